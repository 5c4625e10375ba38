"""Signal-processing building blocks of the synthetic music world (float64 throughout).

Everything here is a small, vectorised numpy/scipy routine: envelopes,
Butterworth filters, a band-limited sawtooth, a tapped feedback echo and a
synthetic-impulse-response reverb. Nothing here models a real instrument
or a real room; it is just enough signal processing to make clips whose
attributes can be heard (and measured) in tests and benchmarks.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal


def samples(seconds: float, sr: int) -> int:
    """A duration in whole samples (at least 1)."""
    return max(1, round(seconds * sr))


def adsr(n: int, gate: int, sr: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """Piecewise-linear ADSR envelope of ``n`` samples for a note held ``gate`` samples.

    Parameters
    ----------
    n, gate : int
        Envelope length and note-on time in samples; the release starts at ``gate``.
    sr : int
        Sample rate.
    attack, decay, release : float
        Segment durations in seconds.
    sustain : float
        Sustain level in [0, 1].

    Returns
    -------
    numpy.ndarray
        float64 envelope, 0 at the start and after the release.
    """
    a, d, r = max(attack * sr, 1.0), max(decay * sr, 1.0), max(release * sr, 1.0)
    xp, fp = [0.0, a, a + d], [0.0, 1.0, sustain]
    g = float(min(gate, n))
    # A short note is released from wherever the attack/decay had got to.
    level = float(np.interp(g, xp, fp))
    idx = np.arange(n, dtype=np.float64)
    env = np.interp(idx, xp, fp)
    after = idx >= g
    env[after] = level * np.clip(1.0 - (idx[after] - g) / r, 0.0, 1.0)
    return env


def decay_env(n: int, gate: int, sr: int, attack: float, tau: float, release: float) -> np.ndarray:
    """Percussive envelope: linear attack, exponential decay (time constant ``tau`` s), linear release."""
    t = np.arange(n, dtype=np.float64) / sr
    env = np.minimum(t / max(attack, 1.0 / sr), 1.0) * np.exp(-t / tau)
    g = min(gate, n)
    if g < n:
        r = max(release * sr, 1.0)
        env[g:] *= np.clip(1.0 - np.arange(n - g) / r, 0.0, 1.0)
    return env


@lru_cache(maxsize=512)
def _butter(btype: str, cutoff: float | tuple[float, float], sr: int, order: int) -> np.ndarray:
    return signal.butter(order, cutoff, btype=btype, fs=sr, output="sos")


def _clamp(cutoff: float, sr: int) -> float:
    return float(min(max(cutoff, 10.0), 0.49 * sr))


def lowpass(x: np.ndarray, cutoff: float, sr: int, order: int = 2, zero_phase: bool = False) -> np.ndarray:
    """Butterworth low-pass; ``zero_phase`` filters forwards and backwards (no delay, twice the order)."""
    sos = _butter("lowpass", _clamp(cutoff, sr), sr, order)
    return signal.sosfiltfilt(sos, x) if zero_phase else signal.sosfilt(sos, x)


def highpass(x: np.ndarray, cutoff: float, sr: int, order: int = 2) -> np.ndarray:
    """Butterworth high-pass."""
    return signal.sosfilt(_butter("highpass", _clamp(cutoff, sr), sr, order), x)


def bandpass(x: np.ndarray, low: float, high: float, sr: int, order: int = 2) -> np.ndarray:
    """Butterworth band-pass between ``low`` and ``high`` Hz."""
    return signal.sosfilt(_butter("bandpass", (_clamp(low, sr), _clamp(high, sr)), sr, order), x)


def saw(freq: float, n: int, sr: int, phase: float = 0.0) -> np.ndarray:
    """Band-limited sawtooth in [-1, 1] (naive ramp with a polyBLEP correction at each wrap).

    The correction removes most of the aliasing a naive ramp has at 16 kHz,
    which would otherwise put off-key partials into the pitch-class profile.
    """
    dt = freq / sr
    ph = (phase + dt * np.arange(n)) % 1.0
    y = 2.0 * ph - 1.0
    m = ph < dt
    t = ph[m] / dt
    y[m] -= t + t - t * t - 1.0
    m = ph > 1.0 - dt
    t = (ph[m] - 1.0) / dt
    y[m] -= t * t + t + t + 1.0
    return y


def harmonic_sum(freq: float, n: int, sr: int, amps: np.ndarray, decay: float = 0.0) -> np.ndarray:
    """Sum of sine partials ``amps[k-1] * sin(2 pi k f t)``, partial k fading as ``exp(-decay (k-1) t)``.

    Uses the Chebyshev recursion sin(k x) = 2 cos(x) sin((k-1) x) - sin((k-2) x)
    so that K partials cost K multiply-adds instead of K sine evaluations.
    """
    t = np.arange(n, dtype=np.float64) / sr
    x = 2.0 * np.pi * freq * t
    s_prev, s_cur = np.zeros(n), np.sin(x)
    two_cos = 2.0 * np.cos(x)
    out = amps[0] * s_cur
    fade = np.exp(-decay * t) if decay > 0 else None
    weight = np.ones(n) if fade is not None else None
    for a in amps[1:]:
        s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
        if fade is not None:
            weight = weight * fade
            out += a * weight * s_cur
        else:
            out += a * s_cur
    return out


def echo(x: np.ndarray, delay: int, feedback: float, mix: float) -> np.ndarray:
    """Feedback delay ``y[n] = x[n] + mix * sum_k feedback^(k-1) x[n - k delay]``.

    The recursive comb is expanded into its taps (until they fall below
    -60 dB) because an IIR filter with a denominator thousands of samples
    long is far slower than a handful of shifted adds.
    """
    y = x.copy()
    gain, k = mix, 1
    while gain >= 1e-3 and k * delay < len(x):
        y[k * delay:] += gain * x[: len(x) - k * delay]
        gain *= feedback
        k += 1
    return y


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator, t60: float, wet: float, dark: bool) -> np.ndarray:
    """Convolve with a synthetic impulse response: exponentially decaying noise after a short pre-delay.

    The IR has unit energy, so the wet signal has about the power of the dry
    one; ``wet`` is the mix proportion. The output has the input's length
    (the tail past the end is dropped; the caller fades the ending).
    """
    n_ir = samples(t60, sr)
    t = np.arange(n_ir) / sr
    ir = rng.standard_normal(n_ir) * np.exp(-6.9 * t / t60)
    ir = lowpass(ir, 2500.0 if dark else 5000.0, sr)
    ir[: samples(0.012, sr)] = 0.0  # pre-delay: the first reflection arrives after the direct sound
    ir /= np.sqrt(np.sum(ir**2))
    wet_sig = signal.fftconvolve(x, ir)[: len(x)]
    return (1.0 - wet) * x + wet * wet_sig


def fade(x: np.ndarray, sr: int, fade_in: float, fade_out: float) -> np.ndarray:
    """Linear fade-in and fade-out (in place, returns ``x``) so a clip never starts or stops with a click."""
    a, b = min(samples(fade_in, sr), len(x)), min(samples(fade_out, sr), len(x))
    x[:a] *= np.linspace(0.0, 1.0, a, endpoint=False)
    x[len(x) - b:] *= np.linspace(1.0, 0.0, b)
    return x
