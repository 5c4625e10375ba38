"""``mel``: log-mel spectrogram frames, a deterministic DSP baseline with no weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .base import Encoder, Windowing, pick_device


class MelEncoder(Encoder):
    """Log-mel power spectrogram frames as embeddings.

    Each window of ``window_seconds`` is analysed with a Hann-windowed STFT
    (``n_fft`` samples, frames every ``frame_hop`` samples, no centring, so
    no frame reaches outside its window), mapped to ``n_mels`` Slaney-style
    mel bands (librosa's filterbank) between ``fmin`` and ``fmax``, and
    expressed in dB, ``10 log10(max(power, 1e-10))``, without a reference
    level so that loudness differences stay visible. Each frame is one
    ``n_mels``-dimensional embedding.

    Parameters
    ----------
    sample_rate, n_fft, frame_hop, n_mels, fmin, fmax :
        Analysis parameters (defaults: 16 kHz, 1024, 256, 64 bands, 0 Hz to Nyquist).
    window_seconds, hop_seconds : float
        Encoder window and hop (default 1 s each).
    pad : {"repeat", "zero"}
        How a clip shorter than one window is filled.
    device : str, optional
        Torch device; default CUDA when available.
    batch_size : int
        Windows per forward pass.
    """

    name = "mel"
    code_version = "1"

    def __init__(self, *, sample_rate: int = 16000, n_fft: int = 1024, frame_hop: int = 256,
                 n_mels: int = 64, fmin: float = 0.0, fmax: float | None = None,
                 window_seconds: float = 1.0, hop_seconds: float | None = None, pad: str = "repeat",
                 device: str | None = None, batch_size: int = 64):
        import librosa
        import torch

        fmax = sample_rate / 2 if fmax is None else fmax
        if not 0 <= fmin < fmax <= sample_rate / 2:
            raise InputError(f"fmin/fmax: need 0 <= fmin < fmax <= {sample_rate / 2}, got {fmin}, {fmax}")
        window = round(window_seconds * sample_rate)
        if window < n_fft:
            raise InputError(f"window_seconds: {window_seconds} s is shorter than one FFT frame ({n_fft} samples)")
        self.sample_rate = int(sample_rate)
        self.windowing = Windowing(window, round((hop_seconds or window_seconds) * sample_rate), pad)
        self.dim = int(n_mels)
        self.frames_per_window = 1 + (window - n_fft) // frame_hop
        self.device = pick_device(device)
        self.batch_size = int(batch_size)
        self._params = {"n_fft": n_fft, "frame_hop": frame_hop, "n_mels": n_mels, "fmin": fmin, "fmax": fmax}
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self._basis = torch.from_numpy(basis).to(self.device)
        self._window = torch.hann_window(n_fft, periodic=True, device=self.device)

    def fingerprint_parts(self) -> dict[str, Any]:
        return {**self._params, "scale": "dB-1e-10", "mel": "slaney"}

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32), device=self.device)
            spec = torch.stft(x, n_fft=self._params["n_fft"], hop_length=self._params["frame_hop"],
                              window=self._window, center=False, return_complex=True)
            power = spec.real.square() + spec.imag.square()                  # (b, bins, frames)
            mel = torch.matmul(self._basis, power)                             # (b, n_mels, frames)
            db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
            return db.transpose(1, 2).contiguous().cpu().numpy()
