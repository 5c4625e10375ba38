"""Seeded audio degradations with a severity in [0, 1], for the synthetic corpus.

Each kind maps severity to one physical parameter (documented per kind in
:func:`degrade`); severity 0 returns the input unchanged, 1 is the worst
case. The output has the input's length and stays in [-1, 1]. Made for the
synthetic world's demos, tests and benchmarks (rater models, reward checks).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError
from ._dsp import lowpass, samples
from .attributes import SAMPLE_RATE

DEGRADATIONS = ("noise", "clipping", "detune", "jitter", "lowpass", "dropout")


def noise_snr_db(severity: float) -> float:
    """SNR of the ``noise`` degradation: 40 dB at severity 0 falling linearly to 0 dB at 1."""
    return 40.0 * (1.0 - severity)


def clip_threshold_db(severity: float) -> float:
    """Hard-clip threshold of ``clipping`` relative to the clip's peak: 0 dB falling linearly to -24 dB."""
    return -24.0 * severity


def lowpass_cutoff_hz(severity: float) -> float:
    """Cutoff of ``lowpass``: geometric from 7500 Hz (severity 0) to 250 Hz (severity 1)."""
    return 7500.0 * (250.0 / 7500.0) ** severity


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _noise(x: np.ndarray, s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    white = rng.standard_normal(len(x))
    if rng.random() < 0.5:  # pink: shape white noise by 1/sqrt(f) in the frequency domain
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(len(x), 1.0 / sr)
        spec[1:] /= np.sqrt(f[1:] / f[1])
        spec[0] = 0.0
        white = np.fft.irfft(spec, n=len(x))
    power = float(np.mean(x**2))
    if power == 0.0:
        power = 1e-2  # a silent input gets noise as if the signal were at -20 dBFS
    target = power / 10.0 ** (noise_snr_db(s) / 10.0)
    return x + white * np.sqrt(target / np.mean(white**2))


def _clipping(x: np.ndarray, s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    if peak == 0.0:
        return x.copy()
    thr = peak * 10.0 ** (clip_threshold_db(s) / 20.0)
    # Make-up gain back to the original peak: the sound of an overdriven stage, not of a quieter clip.
    return np.clip(x, -thr, thr) * (peak / thr)


def _detune(x: np.ndarray, s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = len(x)
    t = np.arange(n) / sr
    drift = rng.choice([-1.0, 1.0]) * 50.0 * t / max(t[-1], 1e-9)
    wow = 40.0 * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * t + rng.uniform(0, 2 * np.pi))
    cents = s * (drift + wow)
    # Reading the input at a varying speed shifts the pitch by the speed ratio.
    position = np.concatenate([[0.0], np.cumsum(2.0 ** (cents[:-1] / 1200.0))])
    return np.interp(position, np.arange(n), x, right=0.0)


def _jitter(x: np.ndarray, s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    # Overlap-add of 80 ms Hann grains (50 % overlap), each read from a randomly shifted position.
    hop = samples(0.04, sr)
    size = 2 * hop
    pad = hop + samples(0.05, sr)
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad + size)])
    n_frames = (len(x) + hop) // hop + 1
    shift = np.round(rng.uniform(-1.0, 1.0, n_frames) * s * 0.04 * sr).astype(np.int64)
    starts = pad - hop + np.arange(n_frames) * hop + shift
    starts = np.clip(starts, 0, len(padded) - size)
    window = np.sin(np.pi * np.arange(size) / size) ** 2  # periodic Hann: halves overlap-add to 1
    frames = padded[starts[:, None] + np.arange(size)] * window
    out = np.zeros((n_frames + 1) * hop)
    out.reshape(-1, hop)[:-1] += frames[:, :hop]
    out.reshape(-1, hop)[1:] += frames[:, hop:]
    return out[hop: hop + len(x)]


def _lowpass(x: np.ndarray, s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    return lowpass(x, lowpass_cutoff_hz(s), sr, order=4, zero_phase=True)


def _dropout(x: np.ndarray, s: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    y = x.copy()
    budget = int(0.3 * s * len(x))  # up to 30 % of the clip silenced at severity 1
    while budget > 0:
        gap = min(samples(rng.uniform(0.02, 0.12), sr), budget)
        start = int(rng.integers(0, max(1, len(x) - gap)))
        y[start: start + gap] = 0.0
        budget -= gap
    return y


_KINDS = {"noise": _noise, "clipping": _clipping, "detune": _detune, "jitter": _jitter,
          "lowpass": _lowpass, "dropout": _dropout}


def _check_audio(audio: object) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1 or x.size < 2 or not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"audio must be a 1-D float array of at least 2 samples, got shape {x.shape} {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise InputError("audio contains NaN or infinite samples")
    return x


def check_severity(kind: str, severity: object) -> float:
    """Validate a (kind, severity) pair; return the severity as a float."""
    if kind not in _KINDS:
        raise InputError(f"unknown degradation {kind!r}; choose from {list(DEGRADATIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(severity) <= 1.0:
        raise InputError(f"severity of {kind!r} must be a number in [0, 1], got {severity!r}")
    return float(severity)


def degrade(audio: np.ndarray, kind: str, severity: float, rng: np.random.Generator | int | None = None, *,
            sr: int = SAMPLE_RATE) -> np.ndarray:
    """Apply one degradation.

    Parameters
    ----------
    audio : numpy.ndarray
        1-D float mono signal (float32 or float64).
    kind : str
        One of :data:`DEGRADATIONS`:

        * ``noise``: white or pink (50/50) Gaussian noise at SNR :func:`noise_snr_db` = 40 (1 - s) dB;
        * ``clipping``: hard clip at :func:`clip_threshold_db` = -24 s dB below the peak, make-up
          gain back to the peak;
        * ``detune``: pitch drift up to ±50 s cents plus wow of ±40 s cents at 0.5-3 Hz
          (a time-varying read speed, linear interpolation);
        * ``jitter``: 80 ms grains overlap-added, each shifted by up to ±40 s ms;
        * ``lowpass``: 8th-order zero-phase Butterworth at :func:`lowpass_cutoff_hz` (7500 -> 250 Hz);
        * ``dropout``: 20-120 ms gaps zeroed until 30 s % of the clip is silent.
    severity : float
        s in [0, 1]; 0 returns the input unchanged.
    rng : numpy.random.Generator or int, optional
        Randomness of the noise, shifts, gaps and drift.
    sr : int
        Sample rate of ``audio``.

    Returns
    -------
    numpy.ndarray
        Same length and dtype as ``audio``, clipped to [-1, 1].
    """
    x = _check_audio(audio)
    s = check_severity(kind, severity)
    if s == 0.0:
        return x.copy()
    y = _KINDS[kind](x.astype(np.float64), s, _rng(rng), sr)
    return np.clip(y, -1.0, 1.0).astype(x.dtype)


def random_degradations(rng: np.random.Generator) -> list[tuple[str, float]]:
    """One or two distinct kinds (50/50), each with a severity uniform in [0.1, 1] rounded to 0.01."""
    k = int(rng.integers(1, 3))
    kinds = [DEGRADATIONS[i] for i in rng.choice(len(DEGRADATIONS), size=k, replace=False)]
    return [(kind, round(float(rng.uniform(0.1, 1.0)), 2)) for kind in kinds]


def apply_degradations(audio: np.ndarray, degradations: Iterable[tuple[str, float]],
                       rng: np.random.Generator | int | None = None, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Apply several degradations in order, all drawing from one generator."""
    rng = _rng(rng)
    for kind, severity in degradations:
        audio = degrade(audio, kind, severity, rng, sr=sr)
    return audio


def format_degradations(degradations: Iterable[tuple[str, float]]) -> str:
    """``"noise:0.42;clipping:0.10"`` (empty for none), as in metadata.csv."""
    return ";".join(f"{kind}:{severity:.2f}" for kind, severity in degradations)


def parse_degradations(text: str) -> list[tuple[str, float]]:
    """Inverse of :func:`format_degradations`; validates kinds and severities."""
    out = []
    for item in filter(None, (p.strip() for p in (text or "").split(";"))):
        kind, sep, value = item.partition(":")
        try:
            severity = float(value)
        except ValueError:
            severity = None
        if not sep or severity is None:
            raise InputError(f"degradation {item!r} is not KIND:SEVERITY")
        out.append((kind, check_severity(kind, severity)))
    return out
