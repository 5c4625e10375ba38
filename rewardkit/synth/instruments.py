"""The instruments of the synthetic music world, each a different textbook synthesis method.

Every melodic instrument has the signature ``fn(freq, n, gate, *, sr, bright, velocity, rng)`` and
returns ``n`` float64 samples (the note held ``gate`` samples, then released),
peaking near ``velocity``. Drum hits take ``(sr, rng)``. These are toy
synthesisers for a synthetic corpus (demos, tests, benchmarks), not models of
real instruments.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ._dsp import adsr, bandpass, decay_env, harmonic_sum, highpass, lowpass, samples, saw


def additive(freq: float, n: int, gate: int, *, sr: int, bright: bool, velocity: float,
             rng: np.random.Generator) -> np.ndarray:
    """Organ-like additive tone: harmonic partials with amplitude ``k**-tilt`` (tilt 1.1 bright, 2.0 dark).

    Even partials are a little weaker (a hollow, organ/clarinet colour) and
    upper partials fade faster than the fundamental.
    """
    k = np.arange(1, max(1, min(16, int(0.45 * sr / freq))) + 1)
    amps = k ** -(1.1 if bright else 2.0)
    amps[1::2] *= 0.6
    amps /= np.sqrt(np.sum(amps**2))  # equal power whatever the tilt, so brightness does not change loudness
    tone = harmonic_sum(freq, n, sr, amps, decay=1.5)
    return velocity * tone * adsr(n, gate, sr, 0.012, 0.1, 0.75, 0.08)


def fm(freq: float, n: int, gate: int, *, sr: int, bright: bool, velocity: float,
       rng: np.random.Generator, ratio: float = 1.0) -> np.ndarray:
    """Two-operator FM: ``sin(2 pi f t + I(t) sin(2 pi ratio f t))`` with a decaying index ``I(t)``.

    An integer ``ratio`` keeps every sideband on a harmonic of ``freq``; the
    index starts at 3.5 (bright) or 1.3 (dark) and decays faster than the
    amplitude, so the attack is brighter than the tail, as in FM bells and
    electric pianos.
    """
    t = np.arange(n, dtype=np.float64) / sr
    index = (3.5 if bright else 1.3) * velocity * np.exp(-t / 0.25)
    index = np.minimum(index, 0.45 * sr / (ratio * freq))  # keep the sidebands mostly below Nyquist
    y = np.sin(2 * np.pi * freq * t + index * np.sin(2 * np.pi * ratio * freq * t))
    return velocity * y * decay_env(n, gate, sr, 0.003, 0.9, 0.1)


def pluck(freq: float, n: int, gate: int, *, sr: int, bright: bool, velocity: float,
          rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong plucked string as one IIR filter (``scipy.signal.lfilter``).

    The loop ``y[n] = x[n] + g (c0 y[n-L] + c1 y[n-L-1] + c2 y[n-L-2])`` is the
    classic two-point average (delay L + 1/2) followed by linear interpolation
    for the fractional remainder, so the loop delay is exactly ``sr / freq``
    and the pitch is in tune. ``g`` gives a 60 dB decay in about 1.2 s. The
    excitation is a burst of zero-mean noise low-passed at 6 (bright) or 2.5 (dark)
    times the pitch.
    """
    period = sr / freq
    lag = max(int(np.floor(period - 0.5)), 2)
    frac = float(np.clip(period - 0.5 - lag, 0.0, 1.0))
    g = 0.001 ** (1.0 / (freq * 1.2))
    a = np.zeros(lag + 3)
    a[0] = 1.0
    a[lag:] = -g * np.array([(1.0 - frac) / 2.0, 0.5, frac / 2.0])
    # Low-passing the burst relative to the pitch keeps the harmonic roll-off the same in every
    # register (a white burst gives a low note as many bright harmonics as a high one).
    burst = lowpass(rng.uniform(-1.0, 1.0, lag + 1), (6.0 if bright else 2.5) * freq, sr)
    burst -= burst.mean()
    x = np.zeros(n)
    x[: min(n, burst.size)] = burst[:n]
    y = signal.lfilter([1.0], a, x)
    # Normalise the power of the first 100 ms (not the peak), so pitch and brightness do not change loudness.
    head = y[: samples(0.1, sr)]
    power = np.sqrt(np.mean(head**2)) * np.sqrt(2.0)
    y = y / power if power > 0 else y
    return velocity * y * adsr(n, gate, sr, 0.001, 0.01, 1.0, 0.06)


def pad(freq: float, n: int, gate: int, *, sr: int, bright: bool, velocity: float,
        rng: np.random.Generator) -> np.ndarray:
    """Three detuned band-limited sawtooths (-8, 0, +8 cents, random phases) with a slow ADSR.

    The caller low-passes the summed pad bus once (cheaper than per note).
    """
    y = np.zeros(n)
    for cents in (-8.0, 0.0, 8.0):
        y += saw(freq * 2 ** (cents / 1200), n, sr, phase=float(rng.random()))
    return velocity * (y / 3.0) * adsr(n, gate, sr, 0.25, 0.3, 0.8, 0.35)


def bass(freq: float, n: int, gate: int, *, sr: int, bright: bool, velocity: float,
         rng: np.random.Generator) -> np.ndarray:
    """Round synth bass: six harmonics with a steep tilt, upper ones decaying fast, plucky envelope."""
    amps = np.arange(1, 7) ** -(1.4 if bright else 2.2)
    amps /= np.sqrt(np.sum(amps**2))
    tone = harmonic_sum(freq, n, sr, amps, decay=6.0)
    return velocity * tone * decay_env(n, gate, sr, 0.004, 0.5, 0.05)


def kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Kick: a sine whose pitch sweeps exponentially from 150 to 50 Hz, plus a short click."""
    n = samples(0.35, sr)
    t = np.arange(n) / sr
    f = 50.0 + 100.0 * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.12)
    click = rng.standard_normal(n) * np.exp(-t / 0.003) * 0.3
    return body + click


def snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Snare: a band-passed noise burst plus a quickly decaying 185 Hz tone."""
    n = samples(0.2, sr)
    t = np.arange(n) / sr
    noise = bandpass(rng.standard_normal(n), 1200.0, 6000.0, sr) * np.exp(-t / 0.05)
    tone = np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.03)
    y = 0.8 * noise / np.max(np.abs(noise)) + 0.5 * tone
    return y / np.max(np.abs(y))


def hihat(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Closed hi-hat: noise high-passed at 5 kHz with a 25 ms decay."""
    n = samples(0.08, sr)
    t = np.arange(n) / sr
    y = highpass(rng.standard_normal(n), 5000.0, sr, order=4) * np.exp(-t / 0.025)
    return y / np.max(np.abs(y))


MELODIC = {"additive": additive, "fm": fm, "pluck": pluck, "pad": pad, "bass": bass}
