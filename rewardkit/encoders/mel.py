"""``mel``: log-mel spectrogram frames, a deterministic DSP baseline with no weights."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..errors import InputError
from .base import Encoder, Windowing


class MelEncoder(Encoder):
    """Log-mel power spectrogram frames as embeddings.

    Each window of ``window_seconds`` is analysed with a Hann-windowed STFT
    (``n_fft`` samples, frames every ``frame_hop`` samples, no centring, so
    no frame reaches outside its window), mapped to ``n_mels`` Slaney-style
    mel bands (Slaney's filters, librosa's default) between ``fmin`` and ``fmax``, and
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
        self.requested_device = device
        self.batch_size = int(batch_size)
        self._params = {"n_fft": n_fft, "frame_hop": frame_hop, "n_mels": n_mels, "fmin": fmin, "fmax": fmax}

    @functools.cached_property
    def _analysis(self):
        # Built on first use: a warm run that finds everything in the cache never imports torch.
        import torch

        basis = mel_filterbank(self.sample_rate, self._params["n_fft"], self._params["n_mels"],
                               self._params["fmin"], self._params["fmax"])
        return (torch.from_numpy(basis.astype(np.float32)).to(self.device),
                torch.hann_window(self._params["n_fft"], periodic=True, device=self.device))

    def fingerprint_parts(self) -> dict[str, Any]:
        return {**self._params, "scale": "dB-1e-10", "mel": "slaney"}

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        import torch

        basis, window = self._analysis
        with torch.inference_mode():
            x = torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32), device=self.device)
            spec = torch.stft(x, n_fft=self._params["n_fft"], hop_length=self._params["frame_hop"],
                              window=window, center=False, return_complex=True)
            power = spec.real.square() + spec.imag.square()                  # (b, bins, frames)
            mel = torch.matmul(basis, power)                                   # (b, n_mels, frames)
            db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
            return db.transpose(1, 2).contiguous().cpu().numpy()


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3.0)
    log_step = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / log_step, linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(log_step * (m - 15.0)), m * (200.0 / 3.0))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation [shape=(n_mels, 1 + n_fft // 2)].

    The same construction as librosa's default (``htk=False, norm="slaney"``),
    written out here so that the mel encoder needs neither librosa nor numba.
    """
    bins = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    width = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
