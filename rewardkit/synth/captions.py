"""Natural-language captions of synthetic clips, from templates and synonyms.

A caption always names the key and mode (``"A minor"``), the tempo class, the
lead instrument, the chord instrument (when there are chords) and the drums
(``"no drums"`` exactly when there are none); dynamics, brightness,
register, bass, reverb, echo, BPM and progression are mentioned only some of
the time, and when mentioned they are true. Wording, order and which
optional details appear vary with the caption seed. The vocabulary is kept
unambiguous (e.g. "kick", never "bass drum"; no tempo synonym shares a word
with the drum phrases), so the captions of this synthetic world can be
checked against the attributes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .attributes import STREAM_ATTRIBUTES, STREAM_CAPTION, ClipAttributes, check_seed, clip_seed, sample_attributes

TEMPO_WORDS = {
    "slow": ("slow", "leisurely", "unhurried", "laid-back", "slow-paced"),
    "medium": ("mid-tempo", "medium-tempo", "moderate-tempo", "moderately paced"),
    "fast": ("fast", "quick", "up-tempo", "brisk", "fast-paced"),
}
DYNAMICS_WORDS = {"soft": ("soft", "quiet", "gentle", "delicate"), "medium": (),
                  "loud": ("loud", "powerful", "punchy", "forceful")}
BRIGHTNESS_WORDS = {"dark": ("dark", "muted", "mellow", "murky"),
                    "bright": ("bright", "crisp", "sparkling", "brilliant")}
REGISTER_WORDS = {"low": ("low", "low-register", "low-pitched"), "mid": ("mid-register", "mid-range"),
                  "high": ("high", "high-register", "high-pitched")}
LEAD_WORDS = {
    "additive": ("organ melody", "organ-like lead", "additive synth melody", "organ tune", "additive organ line"),
    "fm": ("FM bell melody", "FM electric piano melody", "FM lead", "bell-like FM melody", "FM synth line"),
    "pluck": ("pluck melody", "plucked-string melody", "plucked lead", "plucked guitar-like line", "pluck tune"),
}
CHORD_WORDS = {
    "pad": ("pad chords", "warm pads", "sustained synth pads", "a lush pad", "airy pad chords"),
    "additive": ("organ chords", "sustained organ chords", "additive organ harmony"),
    "fm": ("FM electric piano chords", "FM chords", "bell-like FM chords"),
    "pluck": ("plucked chords", "plucked-string chords", "strummed pluck chords"),
}
_CHORD_LINKS = ("with", "over", "backed by", "accompanied by")
_NO_CHORDS = ("with no chords", "without chordal backing", "and no harmony")
_BASS_PHRASES = ("and a synth bass", "and a bass line", "plus a bassline", "with a round bass")
DRUM_WORDS = {
    "none": ("no drums", "with no drums", "and no drums", "no drums at all"),
    "steady": ("a steady kick", "a four-on-the-floor kick", "a steady four-on-the-floor beat", "a steady kick drum"),
    "backbeat": ("a backbeat", "a kick-and-snare backbeat", "a simple backbeat", "a rock backbeat"),
    "busy": ("busy drums", "a busy drum pattern", "busy, syncopated drums", "a busy beat with sixteenth-note hi-hats"),
}
_DRUM_LINKS = ("over", "with", "on top of", "driven by")
REVERB_WORDS = {
    "none": ("dry", "with no reverb", "bone-dry"),
    "room": ("with a touch of room reverb", "in a small room", "with light room reverb"),
    "hall": ("with hall reverb", "drenched in hall reverb", "in a big hall", "with lush hall reverb"),
}
_ECHO_PHRASES = ("with echo", "with a dotted-eighth echo", "and an echo on the lead", "with a tape-style echo")
_PIECE_NOUNS = ("tune", "piece", "loop", "clip", "groove", "track")


def _article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" or phrase.startswith("FM") else "a"


def _caption_rng(attributes: ClipAttributes, seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng([attributes.seed, STREAM_CAPTION])
    return np.random.default_rng(seed)


def caption_for(attributes: ClipAttributes, seed: int | np.random.Generator | None = None) -> str:
    """A caption of a clip, consistent with its attributes, in one of many wordings.

    Parameters
    ----------
    attributes : ClipAttributes
        What the clip contains.
    seed : int or numpy.random.Generator, optional
        Chooses the wording. By default a stream of ``attributes.seed``, so a
        clip has a fixed default caption; other seeds give alternative wordings.

    Returns
    -------
    str
        E.g. ``"A fast, bright pluck melody in A minor over a steady kick"``.
    """
    a = attributes
    rng = _caption_rng(a, seed)

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    adjectives = [pick(TEMPO_WORDS[a.tempo_class])]
    if DYNAMICS_WORDS[a.dynamics] and rng.random() < 0.5:
        adjectives.append(pick(DYNAMICS_WORDS[a.dynamics]))
    if rng.random() < 0.6:
        adjectives.append(pick(BRIGHTNESS_WORDS[a.brightness]))
    if rng.random() < 0.3:
        rng.shuffle(adjectives)
    lead = pick(LEAD_WORDS[a.lead])
    if rng.random() < 0.5:
        lead = f"{pick(REGISTER_WORDS[a.register])} {lead}"
    head = (", " if rng.random() < 0.5 else " ").join(adjectives) + " " + lead

    key = f"{a.key} {a.mode}"
    in_key = pick((f"in {key}", f"in the key of {key}", f"in {key}"))
    chord_link = pick(_CHORD_LINKS)
    if a.chord_instrument is not None:
        chords = f"{chord_link} {pick(CHORD_WORDS[a.chord_instrument])}"
    else:
        chords = pick(_NO_CHORDS) if rng.random() < 0.4 else ""
    bass = pick(_BASS_PHRASES) if a.bass and rng.random() < 0.6 else ""
    if a.drums == "none":
        drums = pick(DRUM_WORDS["none"])
    else:
        # Never the chords' link word twice ("over pads over drums").
        drums = f"{pick(tuple(w for w in _DRUM_LINKS if w != chord_link))} {pick(DRUM_WORDS[a.drums])}"

    extras = []
    if rng.random() < 0.5:
        extras.append(pick(REVERB_WORDS[a.reverb]))
    if a.echo and rng.random() < 0.6:
        extras.append(pick(_ECHO_PHRASES))
    if rng.random() < 0.3:
        extras.append(pick((f"at {a.tempo_bpm} BPM", f"around {a.tempo_bpm} bpm")))
    if rng.random() < 0.2:
        extras.append(f"following a {a.progression} progression")
    rng.shuffle(extras)

    def join(*parts: str, sep: str = " ") -> str:
        return sep.join(p for p in parts if p)

    template = int(rng.integers(4))
    if template == 0:
        text = join(f"{_article(head)} {head}", in_key, chords, bass)
        text = join(text, drums, sep=", " if rng.random() < 0.5 or a.drums == "none" else " ")
    elif template == 1:
        text = join(f"{key} {pick(_PIECE_NOUNS)}:", f"{_article(head)} {head}")
        text = join(text, chords, bass, drums, sep=", ")
    elif template == 2:
        text = join(join(head, in_key), join(chords, bass), drums, sep=", ")
    elif a.drums != "none":
        groove = pick(DRUM_WORDS[a.drums])
        text = join(groove, pick(("under", "beneath", "behind")), f"{_article(head)} {head}", in_key, chords, bass)
    else:
        text = join(join(f"{_article(head)} {head}", chords, bass), in_key, drums, sep=", ")
    if extras:
        text = join(text, *extras, sep=", ")
    return text[0].upper() + text[1:] if rng.random() < 0.7 else text


def caption_sampler(seed: int) -> Iterator[tuple[str, ClipAttributes]]:
    """Endless (caption, attributes) pairs of the corpus with this seed, without rendering audio.

    Item i is the default caption and the attributes of clip i of
    ``make_corpus(..., seed=seed)`` (and of ``render_clip(clip_seed(seed, i))``),
    so captions can serve as prompts for the same synthetic world.
    """
    check_seed(seed)
    i = 0
    while True:
        s = clip_seed(seed, i)
        attributes = sample_attributes(np.random.default_rng([s, STREAM_ATTRIBUTES]), seed=s)
        yield caption_for(attributes), attributes
        i += 1


def sample_captions(n: int, seed: int) -> list[tuple[str, ClipAttributes]]:
    """The first ``n`` items of :func:`caption_sampler` ``(seed)``."""
    from ..errors import InputError

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    sampler = caption_sampler(seed)
    return [next(sampler) for _ in range(int(n))]
