"""The attribute space of the synthetic music world, and seeded sampling from it.

A :class:`ClipAttributes` record says everything a caption may mention about a
clip; the notes themselves (melody, rhythm, drum hits) come from the record's
``seed`` when the clip is rendered. This is a made-up world for demos, tests
and benchmarks, not a model of real music.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

SAMPLE_RATE = 16000

TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Semitone offsets of the seven scale degrees of each mode.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
}
_MODE_P = (0.45, 0.4, 0.15)
#: Chord progressions as 0-based scale-degree roots of diatonic triads.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2)),
    "dorian": ((0, 3, 0, 3), (0, 6, 3, 0), (0, 1, 0, 6)),
}
LEADS = ("additive", "fm", "pluck")
CHORD_INSTRUMENTS = ("pad", "additive", "fm", "pluck")
TEMPO_CLASSES = ("slow", "medium", "fast")
#: BPM range sampled for each tempo class (inclusive); the class of any BPM is :func:`tempo_class_for`.
TEMPO_RANGES = {"slow": (70, 94), "medium": (95, 124), "fast": (125, 160)}
REGISTERS = ("low", "mid", "high")
DRUMS = ("none", "steady", "backbeat", "busy")
DYNAMICS = ("soft", "medium", "loud")
BRIGHTNESS = ("dark", "bright")
REVERBS = ("none", "room", "hall")
DURATION_RANGE = (2.0, 4.0)

# Independent random streams of one clip seed: attributes, notes, captions, degradations, ratings, selection.
STREAM_ATTRIBUTES, STREAM_RENDER, STREAM_CAPTION, STREAM_DEGRADE, STREAM_RATE, STREAM_SELECT = range(6)

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


def tempo_class_for(bpm: float) -> str:
    """``slow`` below 95 BPM, ``medium`` below 125, else ``fast``."""
    return "slow" if bpm < 95 else "medium" if bpm < 125 else "fast"


def triad(mode: str, degree: int) -> tuple[int, int, int]:
    """Semitones above the tonic of the diatonic triad on a 0-based scale degree."""
    scale = MODES[mode]
    return tuple(12 * ((degree + i) // 7) + scale[(degree + i) % 7] for i in (0, 2, 4))  # type: ignore[return-value]


def roman(mode: str, degree: int) -> str:
    """Roman numeral of the diatonic triad on a degree: upper case major, lower case minor, ° diminished."""
    root, third, fifth = triad(mode, degree)
    numeral = _ROMAN[degree % 7]
    if third - root == 4:
        return numeral
    return numeral.lower() + ("°" if fifth - root == 6 else "")


def progression_name(mode: str, degrees: tuple[int, ...]) -> str:
    """``I-V-vi-IV`` style name of a progression in a mode."""
    return "-".join(roman(mode, d) for d in degrees)


def progression_degrees(mode: str, name: str) -> tuple[int, ...]:
    """Scale-degree roots of a named progression of :data:`PROGRESSIONS` in ``mode``."""
    for degrees in PROGRESSIONS[mode]:
        if progression_name(mode, degrees) == name:
            return degrees
    known = [progression_name(mode, d) for d in PROGRESSIONS[mode]]
    raise InputError(f"progression {name!r} is not one of the {mode} progressions {known}")


@dataclass(frozen=True)
class ClipAttributes:
    """Everything a caption may say about one synthetic clip; rendering adds notes drawn from ``seed``.

    Attributes
    ----------
    seed : int
        Non-negative seed of the clip's notes (melody walk, rhythm, drum noise, reverb IR).
    duration : float
        Seconds (sampled in [2, 4]; any value in [0.5, 30] renders).
    lead : str
        Melody instrument: ``additive`` (organ-like harmonic partials), ``fm`` (2-operator FM) or
        ``pluck`` (Karplus-Strong string).
    chord_instrument : str or None
        ``pad``, ``additive``, ``fm``, ``pluck``, or None for no chords; never the lead's instrument.
    bass : bool
        Whether a bass line plays the chord roots.
    key : str
        Tonic, one of :data:`TONICS`.
    mode : str
        ``major``, ``minor`` or ``dorian``.
    progression : str
        Roman-numeral chord progression, one of the mode's :data:`PROGRESSIONS` (e.g. ``I-V-vi-IV``).
    tempo_bpm : int
        Beats per minute (sampled 70-160; 40-240 renders).
    tempo_class : str
        ``slow``/``medium``/``fast``; must equal :func:`tempo_class_for` of ``tempo_bpm``.
    register : str
        Melody octave: ``low`` (tonic in octave 3), ``mid`` (octave 4) or ``high`` (octave 5).
    drums : str
        ``none``, ``steady`` (four-on-the-floor kick), ``backbeat`` (kick + snare on 2 and 4) or ``busy``.
    dynamics : str
        ``soft``, ``medium`` or ``loud``: the peak level (and, for loud, some saturation).
    brightness : str
        ``dark`` (steep spectral tilt, low-passed mix) or ``bright``.
    reverb : str
        ``none``, ``room`` (short synthetic IR) or ``hall`` (long one).
    echo : bool
        A dotted-eighth feedback echo on the lead.
    """

    seed: int
    duration: float
    lead: str
    chord_instrument: str | None
    bass: bool
    key: str
    mode: str
    progression: str
    tempo_bpm: int
    tempo_class: str
    register: str
    drums: str
    dynamics: str
    brightness: str
    reverb: str
    echo: bool

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.duration, (int, float, np.floating)) and 0.5 <= self.duration <= 30):
            raise InputError(f"duration must be a number of seconds in [0.5, 30], got {self.duration!r}")
        choices = {
            "lead": LEADS, "key": TONICS, "mode": tuple(MODES), "tempo_class": TEMPO_CLASSES,
            "register": REGISTERS, "drums": DRUMS, "dynamics": DYNAMICS, "brightness": BRIGHTNESS,
            "reverb": REVERBS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if self.chord_instrument is not None and self.chord_instrument not in CHORD_INSTRUMENTS:
            raise InputError(f"chord_instrument must be None or one of {list(CHORD_INSTRUMENTS)}, "
                             f"got {self.chord_instrument!r}")
        if self.chord_instrument == self.lead:
            raise InputError(f"chord_instrument must differ from the lead ({self.lead!r})")
        if not isinstance(self.bass, (bool, np.bool_)) or not isinstance(self.echo, (bool, np.bool_)):
            raise InputError("bass and echo must be booleans")
        if isinstance(self.tempo_bpm, bool) or not isinstance(self.tempo_bpm, (int, np.integer)) \
                or not 40 <= self.tempo_bpm <= 240:
            raise InputError(f"tempo_bpm must be an integer in [40, 240], got {self.tempo_bpm!r}")
        if self.tempo_class != tempo_class_for(self.tempo_bpm):
            raise InputError(f"tempo_class {self.tempo_class!r} does not match {self.tempo_bpm} BPM "
                             f"(which is {tempo_class_for(self.tempo_bpm)!r})")
        progression_degrees(self.mode, self.progression)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (field order), e.g. for a CSV row."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> ClipAttributes:
        """Rebuild a record from :meth:`to_dict` output or a metadata.csv row (strings, NaN for None).

        Extra keys (file, caption, degradations, ...) are ignored.
        """
        def truth(v: Any) -> bool:
            if isinstance(v, str):
                if v.strip().lower() not in ("true", "false", "1", "0"):
                    raise InputError(f"expected a boolean, got {v!r}")
                return v.strip().lower() in ("true", "1")
            return bool(v)

        try:
            chord = row["chord_instrument"]
            if chord is None or chord == "" or (isinstance(chord, float) and math.isnan(chord)):
                chord = None
            return cls(
                seed=int(row["seed"]), duration=float(row["duration"]), lead=str(row["lead"]),
                chord_instrument=chord, bass=truth(row["bass"]), key=str(row["key"]), mode=str(row["mode"]),
                progression=str(row["progression"]), tempo_bpm=int(row["tempo_bpm"]),
                tempo_class=str(row["tempo_class"]), register=str(row["register"]), drums=str(row["drums"]),
                dynamics=str(row["dynamics"]), brightness=str(row["brightness"]), reverb=str(row["reverb"]),
                echo=truth(row["echo"]),
            )
        except KeyError as exc:
            raise InputError(f"attribute record lacks {exc.args[0]!r}") from None


def _pick(rng: np.random.Generator, options: tuple, p: tuple[float, ...] | None = None) -> Any:
    # Index instead of rng.choice(options) so that None and strings survive as Python objects.
    return options[int(rng.choice(len(options), p=p))]


def sample_attributes(rng: np.random.Generator | int, *, seed: int | None = None) -> ClipAttributes:
    """Draw a random attribute record.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Source of the attribute draws (an int is turned into ``default_rng(rng)``).
    seed : int, optional
        The record's ``seed`` (which fixes the notes); drawn from ``rng`` when omitted.

    Returns
    -------
    ClipAttributes
        Classes are uniform except mode (major 45 %, minor 40 %, dorian 15 %), chords (none 25 %),
        bass (60 %) and echo (25 %); BPM is uniform within its tempo class, duration uniform in
        [2, 4] s (two decimals).
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if seed is None:
        seed = int(rng.integers(0, 2**63 - 1))
    duration = round(float(rng.uniform(*DURATION_RANGE)), 2)
    lead = _pick(rng, LEADS)
    others = tuple(c for c in CHORD_INSTRUMENTS if c != lead)
    chord = None if rng.random() < 0.25 else _pick(rng, others)
    bass = bool(rng.random() < 0.6)
    key = _pick(rng, TONICS)
    mode = _pick(rng, tuple(MODES), _MODE_P)
    progression = progression_name(mode, _pick(rng, PROGRESSIONS[mode]))
    tempo_class = _pick(rng, TEMPO_CLASSES)
    lo, hi = TEMPO_RANGES[tempo_class]
    tempo_bpm = int(rng.integers(lo, hi + 1))
    return ClipAttributes(
        seed=int(seed), duration=duration, lead=lead, chord_instrument=chord, bass=bass, key=key, mode=mode,
        progression=progression, tempo_bpm=tempo_bpm, tempo_class=tempo_class, register=_pick(rng, REGISTERS),
        drums=_pick(rng, DRUMS), dynamics=_pick(rng, DYNAMICS), brightness=_pick(rng, BRIGHTNESS),
        reverb=_pick(rng, REVERBS), echo=bool(rng.random() < 0.25),
    )


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as a Python int, or :class:`~rewardkit.errors.InputError` unless a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def clip_seed(corpus_seed: int, index: int) -> int:
    """The seed of clip ``index`` of the corpus with seed ``corpus_seed`` (63 bits, from SeedSequence).

    ``SeedSequence(corpus_seed, spawn_key=(index,))`` is the sequence
    ``SeedSequence(corpus_seed).spawn(...)`` would give child ``index``, so
    clip i does not depend on how many clips are made.
    """
    ss = np.random.SeedSequence(check_seed(corpus_seed), spawn_key=(check_seed(index, "index"),))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
