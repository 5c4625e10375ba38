"""Rendering an attribute record into audio: notes from the record's seed, then mixing and effects.

The clip is built on a beat grid: a scale-degree random-walk melody on
eighth notes, diatonic triads changing every 2 beats (below 110 BPM) or
every bar, an optional bass on the chord roots, a drum pattern on a
16th-note grid, then echo, reverb, brightness filtering, a short fade and
peak normalisation to the dynamics level. A synthetic world for demos,
tests and benchmarks, not real music.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from . import instruments
from ._dsp import echo, fade, lowpass, reverb, samples
from .attributes import (
    MODES,
    SAMPLE_RATE,
    STREAM_ATTRIBUTES,
    STREAM_RENDER,
    TONICS,
    ClipAttributes,
    check_seed,
    progression_degrees,
    sample_attributes,
)
from .captions import caption_for

#: Peak level of the final mix for each dynamics class (always below 1: a clean clip never clips).
PEAK_LEVEL = {"soft": 0.25, "medium": 0.5, "loud": 0.9}
#: Centre (MIDI) of the melody's tonic per register: the tonic is the key's note within -6..+5 semitones
#: of it, so registers never overlap across keys (low: F#2-F3, mid: F#3-F4, high: F#4-F5).
REGISTER_CENTRE = {"low": 54, "mid": 66, "high": 78}
_CHORD_BASE, _BASS_BASE = 60, 36  # C4 (roots folded into G3-F#4 for C) and C2 for the bass
_GAIN = {"lead": 0.55, "chords": 0.2, "bass": 0.3, "kick": 0.6, "snare": 0.45, "hat": 0.16}
# Drum patterns on a 16-step bar: step -> velocity.
_PATTERNS: dict[str, dict[str, dict[int, float]]] = {
    "steady": {"kick": {0: 1.0, 4: 1.0, 8: 1.0, 12: 1.0}, "hat": {2: 0.8, 6: 0.8, 10: 0.8, 14: 0.8}},
    "backbeat": {"kick": {0: 1.0, 8: 1.0}, "snare": {4: 1.0, 12: 1.0},
                 "hat": {s: 0.7 for s in range(0, 16, 2)}},
    "busy": {"kick": {0: 1.0, 3: 0.6, 6: 0.75, 8: 1.0, 11: 0.6, 14: 0.5},
             "snare": {4: 1.0, 12: 1.0, 7: 0.3, 15: 0.35},
             "hat": {s: 0.75 if s % 2 == 0 else 0.4 for s in range(16)}},
}


def _midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _degree_midi(base: int, scale: tuple[int, ...], degree: int) -> int:
    return base + 12 * (degree // 7) + scale[degree % 7]


def _add(bus: np.ndarray, start: int, note: np.ndarray) -> None:
    end = min(len(bus), start + len(note))
    if end > start:
        bus[start:end] += note[: end - start]


def _melody(rng: np.random.Generator, n_slots: int, slots_per_chord: int,
            chords: list[int]) -> list[tuple[int, int, int, float]]:
    """(start slot, length in slots, scale degree, velocity) of each melody note; a slot is an eighth note.

    A random walk over scale degrees -3..8 (steps of at most 2, reflected at
    the ends); where a chord starts the walk moves to the nearest chord tone
    with probability 0.6, which keeps the melody consonant with the harmony.
    """
    notes = []
    degree = int(rng.choice([0, 2, 4]))
    slot = 0
    while slot < n_slots:
        length = int(rng.choice([1, 2, 2, 3, 4]))
        if slot > 0 and rng.random() < 0.1:
            slot += length  # a rest
            continue
        if slot % slots_per_chord == 0 and rng.random() < 0.6:
            root = chords[(slot // slots_per_chord) % len(chords)]
            tones = [d for d in range(-3, 9) if (d - root) % 7 in (0, 2, 4)]
            degree = min(tones, key=lambda d: (abs(d - degree), d))
        accent = 1.0 if slot % 2 == 0 else 0.8
        notes.append((slot, length, degree, accent * float(rng.uniform(0.75, 1.0))))
        step = int(rng.choice([-2, -1, 0, 1, 2], p=[0.12, 0.33, 0.1, 0.33, 0.12]))
        degree += step
        if degree < -3 or degree > 8:
            degree -= 2 * step
        slot += length
    return notes


def render(attributes: ClipAttributes) -> np.ndarray:
    """Render a clip: mono float32 at :data:`SAMPLE_RATE`, peak :data:`PEAK_LEVEL` of its dynamics.

    Parameters
    ----------
    attributes : ClipAttributes
        What to play; its ``seed`` fixes the notes, the same record always renders the same samples.

    Returns
    -------
    numpy.ndarray
        ``round(duration * SAMPLE_RATE)`` float32 samples in (-1, 1).
    """
    if not isinstance(attributes, ClipAttributes):
        raise InputError(f"render() needs a ClipAttributes record, got {type(attributes).__name__}")
    a = attributes
    rng = np.random.default_rng([a.seed, STREAM_RENDER])
    sr = SAMPLE_RATE
    n = samples(a.duration, sr)
    beat = 60.0 / a.tempo_bpm
    eighth = beat / 2.0
    bright = a.brightness == "bright"
    scale = MODES[a.mode]
    tonic = TONICS.index(a.key)
    degrees = list(progression_degrees(a.mode, a.progression))
    beats_per_chord = 2 if a.tempo_bpm < 110 else 4
    slots_per_chord = 2 * beats_per_chord
    n_slots = math.ceil(a.duration / eighth)
    n_chords = math.ceil(n_slots / slots_per_chord)
    chord_roots = [degrees[i % len(degrees)] for i in range(n_chords)]

    def at(slot: float) -> int:
        return round(slot * eighth * sr)

    # Lead: the melody, with an instrument-specific FM ratio drawn once per clip.
    lead_fn = instruments.MELODIC[a.lead]
    extra = {"ratio": float(rng.choice([1.0, 2.0, 3.0]))} if a.lead == "fm" else {}
    lead_bus = np.zeros(n)
    centre = REGISTER_CENTRE[a.register]
    base = centre + (tonic - centre + 6) % 12 - 6
    for slot, length, degree, vel in _melody(rng, n_slots, slots_per_chord, chord_roots):
        gate = samples(length * eighth * 0.92, sr)
        note = lead_fn(_midi_hz(_degree_midi(base, scale, degree)), gate + samples(0.12, sr), gate,
                       sr=sr, bright=bright, velocity=vel, rng=rng, **extra)
        _add(lead_bus, at(slot), note)
    if a.echo:
        lead_bus = echo(lead_bus, samples(0.75 * beat, sr), feedback=0.45, mix=0.5)
    mix = _GAIN["lead"] * lead_bus

    # Chords: one sustained triad per chord span (pads are low-passed as a bus).
    if a.chord_instrument is not None:
        chord_fn = instruments.MELODIC[a.chord_instrument]
        chord_extra = {"ratio": 1.0} if a.chord_instrument == "fm" else {}
        bus = np.zeros(n)
        for i, root in enumerate(chord_roots):
            gate = samples(slots_per_chord * eighth * 0.97, sr)
            length = gate + samples(0.35 if a.chord_instrument == "pad" else 0.1, sr)
            for semis in _voicing(scale, root):
                note = chord_fn(_midi_hz(_CHORD_BASE + tonic + semis), length, gate, sr=sr, bright=bright,
                                velocity=0.8, rng=rng, **chord_extra)
                _add(bus, at(i * slots_per_chord), note)
        if a.chord_instrument == "pad":
            bus = lowpass(bus, 3000.0 if bright else 1100.0, sr)
        mix += _GAIN["chords"] * bus

    # Bass: the chord root on every beat (every other beat when slow), accented on the chord change.
    if a.bass:
        bus = np.zeros(n)
        step = 4 if a.tempo_class == "slow" else 2
        for slot in range(0, n_slots, step):
            root = chord_roots[slot // slots_per_chord]
            pc = (tonic + scale[root]) % 12
            vel = 1.0 if slot % slots_per_chord == 0 else 0.8
            gate = samples(step * eighth * 0.8, sr)
            _add(bus, at(slot), instruments.bass(_midi_hz(_BASS_BASE + pc), gate + samples(0.06, sr), gate,
                                                 sr=sr, bright=bright, velocity=vel, rng=rng))
        mix += _GAIN["bass"] * bus

    # Drums: one hit per instrument per clip, placed on a 16th-note grid.
    if a.drums != "none":
        hits = {"kick": instruments.kick(sr, rng), "snare": instruments.snare(sr, rng),
                "hat": instruments.hihat(sr, rng)}
        sixteenth = beat / 4.0
        n_steps = math.ceil(a.duration / sixteenth)
        for name, pattern in _PATTERNS[a.drums].items():
            for s in range(n_steps):
                vel = pattern.get(s % 16)
                if vel is not None:
                    _add(mix, round(s * sixteenth * sr), _GAIN[name] * vel * hits[name])

    if a.reverb != "none":
        t60, wet = (0.5, 0.2) if a.reverb == "room" else (1.8, 0.35)
        mix = reverb(mix, sr, rng, t60=t60, wet=wet, dark=not bright)
    if not bright:
        mix = lowpass(mix, 2200.0, sr)
    mix -= mix.mean()
    fade(mix, sr, 0.005, 0.04)
    peak = float(np.max(np.abs(mix)))
    if peak == 0.0:  # cannot happen with a melody, but never divide by zero
        return mix.astype(np.float32)
    mix /= peak
    if a.dynamics == "loud":
        mix = np.tanh(1.6 * mix) / np.tanh(1.6)  # mild saturation: denser as well as higher
    return (PEAK_LEVEL[a.dynamics] * mix).astype(np.float32)


def _voicing(scale: tuple[int, ...], root: int) -> list[int]:
    """Semitones above the octave-4 tonic of a close triad on ``root``; roots a fifth up or more fold down."""
    tones = [12 * ((root + i) // 7) + scale[(root + i) % 7] for i in (0, 2, 4)]
    return [t - 12 for t in tones] if tones[0] >= 7 else tones


def render_clip(seed: int) -> tuple[np.ndarray, ClipAttributes, str]:
    """Attributes, audio and caption of the clip with this seed.

    Parameters
    ----------
    seed : int
        Non-negative clip seed (a corpus derives one per clip with :func:`clip_seed`).

    Returns
    -------
    audio : numpy.ndarray
        float32 mono at :data:`SAMPLE_RATE`; bit-identical for the same seed.
    attributes : ClipAttributes
        The record drawn from the seed (``attributes.seed == seed``).
    caption : str
        ``caption_for(attributes)`` (its default wording for this seed).
    """
    seed = check_seed(seed)
    attributes = sample_attributes(np.random.default_rng([seed, STREAM_ATTRIBUTES]), seed=seed)
    return render(attributes), attributes, caption_for(attributes)
