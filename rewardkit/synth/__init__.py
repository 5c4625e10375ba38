"""``rewardkit.synth``: a procedural world of short captioned music clips, for demos, tests and benchmarks.

This is synthetic audio, not real music and not a music dataset. No
pretrained text-to-music model or real recordings are available to the
project, so it makes its own small world: 2-4 s mono clips at 16 kHz,
rendered with pure numpy/scipy from a seeded attribute record (key, mode,
tempo, instruments, drums, dynamics, brightness, effects), each with a
template caption that is true of the clip, plus seeded degradations and a
documented synthetic rater (:mod:`rewardkit.synth.rater`). Everything is
deterministic from a seed::

    from rewardkit import synth
    audio, attributes, caption = synth.render_clip(7)
    frame = synth.make_corpus("corpus/", n=500, seed=0, degrade_fraction=0.3)

Instruments (each a different synthesis method, ADSR-enveloped): ``additive``
(harmonic partials with spectral tilt), ``fm`` (two operators, decaying
index), ``pluck`` (Karplus-Strong), ``pad`` (detuned band-limited saws,
low-passed), a harmonic bass, and noise/sine drums (kick sweep, snare burst
+ tone, high-passed hi-hat).
"""

from .attributes import (
    BRIGHTNESS,
    CHORD_INSTRUMENTS,
    DRUMS,
    DYNAMICS,
    LEADS,
    MODES,
    PROGRESSIONS,
    REGISTERS,
    REVERBS,
    SAMPLE_RATE,
    TEMPO_CLASSES,
    TONICS,
    ClipAttributes,
    clip_seed,
    sample_attributes,
    tempo_class_for,
)
from .captions import caption_for, caption_sampler, sample_captions
from .corpus import make_corpus
from .degrade import (
    DEGRADATIONS,
    apply_degradations,
    degrade,
    format_degradations,
    parse_degradations,
    random_degradations,
)
from .rater import WEIGHTS, latent_quality, rate, rater_scores
from .render import PEAK_LEVEL, render, render_clip

__all__ = [
    "BRIGHTNESS",
    "CHORD_INSTRUMENTS",
    "DEGRADATIONS",
    "DRUMS",
    "DYNAMICS",
    "LEADS",
    "MODES",
    "PEAK_LEVEL",
    "PROGRESSIONS",
    "REGISTERS",
    "REVERBS",
    "SAMPLE_RATE",
    "TEMPO_CLASSES",
    "TONICS",
    "WEIGHTS",
    "ClipAttributes",
    "apply_degradations",
    "caption_for",
    "caption_sampler",
    "clip_seed",
    "degrade",
    "format_degradations",
    "latent_quality",
    "make_corpus",
    "parse_degradations",
    "random_degradations",
    "rate",
    "rater_scores",
    "render",
    "render_clip",
    "sample_attributes",
    "sample_captions",
    "tempo_class_for",
]
