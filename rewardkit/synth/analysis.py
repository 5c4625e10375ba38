"""DSP readings of rendered or generated clips, for checking them against their attributes."""

from __future__ import annotations

import numpy as np
from scipy import signal

from .attributes import SAMPLE_RATE

__all__ = ["beat_strength", "estimate_tempo", "onset_envelope"]

ONSET_HOP = 128


def onset_envelope(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Spectral flux of the log-compressed STFT magnitude (512-point, hop ``ONSET_HOP``), mean removed."""
    _, _, z = signal.stft(np.asarray(x, dtype=np.float64), sample_rate, nperseg=512, noverlap=512 - ONSET_HOP)
    flux = np.maximum(np.diff(np.log1p(100 * np.abs(z)), axis=1), 0).sum(axis=0)
    return flux - flux.mean()


def _beat_lags(sample_rate: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    bpms = np.arange(low, high + 0.5, 0.5)
    return bpms, 60 * (sample_rate / ONSET_HOP) / bpms


def estimate_tempo(x: np.ndarray, sample_rate: int = SAMPLE_RATE, low: float = 60.0, high: float = 200.0) -> float:
    """Tempo in BPM, in [low, high], from the autocorrelation of a spectral-flux onset envelope.

    Each candidate period also gets half the autocorrelation at twice its lag, which favours the beat
    over its subdivisions. Hop 128 samples, 0.5 BPM grid.
    """
    flux = onset_envelope(x, sample_rate)
    ac = np.correlate(flux, flux, "full")[len(flux) - 1:]
    bpms, lags = _beat_lags(sample_rate, low, high)
    idx = np.arange(len(ac))
    score = np.interp(lags, idx, ac) + 0.5 * np.interp(2 * lags, idx, ac, right=0.0)
    return float(bpms[np.argmax(score)])


def beat_strength(x: np.ndarray, sample_rate: int = SAMPLE_RATE, low: float = 70.0, high: float = 160.0) -> float:
    """How steady the clip's beat is: the onset envelope's autocorrelation peak over beat periods in [low, high] BPM.

    The autocorrelation is normalised by its overlap (lag k averages n - k products) and by its value
    at lag 0, so 1 is a perfectly periodic envelope and white noise gives about 0; a silent clip gives 0.
    """
    flux = onset_envelope(x, sample_rate)
    n = len(flux)
    ac = np.correlate(flux, flux, "full")[n - 1:] / (n - np.arange(n))
    if ac[0] <= 0:
        return 0.0
    _, lags = _beat_lags(sample_rate, low, high)
    lags = lags[lags < n - 1]
    return float(np.interp(lags, np.arange(n), ac / ac[0]).max()) if lags.size else 0.0
