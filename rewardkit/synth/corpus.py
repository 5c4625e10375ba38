"""Writing a corpus of synthetic clips: WAV files, metadata.csv and (with degradations) ratings.csv.

The clips, captions and ratings are all synthetic (see :mod:`rewardkit.synth`):
a made-up world for demos, tests and benchmarks, not real music or real listeners.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from .._fileio import atomic_write
from ..errors import InputError
from .attributes import (
    SAMPLE_RATE,
    STREAM_CAPTION,
    STREAM_DEGRADE,
    STREAM_SELECT,
    check_seed,
    clip_seed,
)
from .captions import caption_for
from .degrade import apply_degradations, format_degradations, random_degradations
from .rater import rate
from .render import render_clip

SUBTYPES = ("PCM_16", "FLOAT")
_OURS = re.compile(r"^(clip_\d{5,}\.wav|metadata\.csv|ratings\.csv)$")


def clip_name(index: int) -> str:
    """``clip_00042.wav``."""
    return f"clip_{index:05d}.wav"


def degraded_indices(n: int, seed: int, fraction: float) -> set[int]:
    """The ``round(fraction * n)`` clips to degrade: those with the smallest per-clip uniform draws.

    Each clip's draw comes from its own seed, so a larger fraction degrades
    a superset of the clips, and a clip degraded in two corpora of the same
    seed is degraded identically.
    """
    k = int(np.floor(fraction * n + 0.5))
    if k == 0:
        return set()
    draws = np.array([np.random.default_rng([clip_seed(seed, i), STREAM_SELECT]).random() for i in range(n)])
    return {int(i) for i in np.argsort(draws, kind="stable")[:k]}


def _prepare(directory: Path, overwrite: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: exists and is not a directory")
    if directory.is_dir():
        entries = list(directory.iterdir())
        if entries and not overwrite:
            raise InputError(f"{directory}: directory is not empty (pass --overwrite / overwrite=True "
                             "to replace a corpus there)")
        # Remove a previous corpus's files so a smaller new one leaves no stale clips behind;
        # anything else in the directory is left alone.
        for entry in entries:
            if entry.is_file() and _OURS.match(entry.name):
                entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_write(path) as f:
        f.write(frame.to_csv(index=False).encode("utf-8"))


def make_corpus(directory: str | os.PathLike[str], n: int, seed: int = 0, degrade_fraction: float = 0.0, *,
                overwrite: bool = False, subtype: str = "PCM_16", captions_per_clip: int = 1,
                progress: bool = False) -> pd.DataFrame:
    """Render ``n`` synthetic clips into ``directory`` and describe them in ``metadata.csv``.

    Parameters
    ----------
    directory : path
        Created if missing; must be empty unless ``overwrite`` (which removes the
        ``clip_*.wav``, ``metadata.csv`` and ``ratings.csv`` of an earlier corpus, nothing else).
    n : int
        Number of clips, ``clip_00000.wav`` ...; clip i is ``render_clip(clip_seed(seed, i))``.
    seed : int
        Corpus seed.
    degrade_fraction : float
        Fraction in [0, 1] of clips (rounded to a count, chosen by :func:`degraded_indices`) that get one
        or two random degradations of random severity. When positive, metadata gains ``degradations``
        (``"noise:0.42;clipping:0.10"``, empty for a clean clip) and ``rating`` columns and
        ``ratings.csv`` (file, rating) rates every clip with :func:`~rewardkit.synth.rate`
        (panel seed = corpus seed).
    overwrite : bool
        Allow a non-empty directory.
    subtype : str
        ``PCM_16`` or ``FLOAT`` WAV samples.
    captions_per_clip : int
        Extra wordings: columns ``caption_1`` ... ``caption_{k-1}`` beside ``caption``.
    progress : bool
        Show a tqdm bar on stderr.

    Returns
    -------
    pandas.DataFrame
        The metadata: ``file``, ``caption`` (``caption_*``), every :class:`ClipAttributes` field, and
        ``degradations``/``rating`` when degrading.
    """
    n = check_seed(n, "n")
    if n < 1:
        raise InputError("n must be at least 1")
    seed = check_seed(seed)
    if not (isinstance(degrade_fraction, (int, float, np.floating)) and 0.0 <= degrade_fraction <= 1.0):
        raise InputError(f"degrade_fraction must be in [0, 1], got {degrade_fraction!r}")
    if subtype not in SUBTYPES:
        raise InputError(f"subtype must be one of {list(SUBTYPES)}, got {subtype!r}")
    captions_per_clip = check_seed(captions_per_clip, "captions_per_clip")
    if captions_per_clip < 1:
        raise InputError("captions_per_clip must be at least 1")
    directory = Path(directory)
    _prepare(directory, overwrite)

    degrading = degrade_fraction > 0
    chosen = degraded_indices(n, seed, degrade_fraction) if degrading else set()
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synth", unit="clip")
    rows = []
    for i in indices:
        s = clip_seed(seed, i)
        audio, attributes, caption = render_clip(s)
        row = {"file": clip_name(i), "caption": caption}
        for j in range(1, captions_per_clip):
            row[f"caption_{j}"] = caption_for(attributes, np.random.default_rng([s, STREAM_CAPTION, j]))
        row.update(attributes.to_dict())
        if degrading:
            applied = []
            if i in chosen:
                rng = np.random.default_rng([s, STREAM_DEGRADE])
                applied = random_degradations(rng)
                audio = apply_degradations(audio, applied, rng)
            row["degradations"] = format_degradations(applied)
            row["rating"] = rate(applied, s, panel_seed=seed)
        buffer = io.BytesIO()
        sf.write(buffer, audio, SAMPLE_RATE, subtype=subtype, format="WAV")
        with atomic_write(directory / row["file"]) as f:
            f.write(buffer.getvalue())
        rows.append(row)
    frame = pd.DataFrame(rows)
    if degrading:
        _write_csv(directory / "ratings.csv", frame[["file", "rating"]])
    # metadata.csv last: a complete metadata file means a complete corpus.
    _write_csv(directory / "metadata.csv", frame)
    return frame
