"""DSP readings of rendered or generated clips, for checking them against their attributes."""

from __future__ import annotations

import numpy as np
from scipy import signal

from .attributes import SAMPLE_RATE

__all__ = ["estimate_tempo"]


def estimate_tempo(x: np.ndarray, sample_rate: int = SAMPLE_RATE, low: float = 60.0, high: float = 200.0) -> float:
    """Tempo in BPM, in [low, high], from the autocorrelation of a spectral-flux onset envelope.

    Each candidate period also gets half the autocorrelation at twice its lag, which favours the beat
    over its subdivisions. Hop 128 samples, 0.5 BPM grid.
    """
    hop = 128
    _, _, z = signal.stft(np.asarray(x, dtype=np.float64), sample_rate, nperseg=512, noverlap=512 - hop)
    flux = np.maximum(np.diff(np.log1p(100 * np.abs(z)), axis=1), 0).sum(axis=0)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1:]
    bpms = np.arange(low, high + 0.5, 0.5)
    lags = 60 * (sample_rate / hop) / bpms
    idx = np.arange(len(ac))
    score = np.interp(lags, idx, ac) + 0.5 * np.interp(2 * lags, idx, ac, right=0.0)
    return float(bpms[np.argmax(score)])
