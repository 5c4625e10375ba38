"""Where a run's prompts come from, and the held-out prompts kept apart from them.

A source is one of

* ``synth`` or ``synth:SEED``: captions of the procedural corpus
  (:func:`rewardkit.synth.sample_captions`), so prompts describe music the
  built-in model was trained on;
* a text file (one prompt per line) or a CSV/TSV file, read through its
  ``caption``/``prompt``/``text`` column or the column named by ``column``.

The training pool and the held-out prompts never share a prompt: a file's
prompts are de-duplicated, shuffled with the run seed and split (or the
held-out set comes from its own source, minus any training prompt); the
synthetic source draws held-out captions from another seed and drops the ones
that also occur in the pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardkit.errors import InputError
from rewardkit.reference import read_captions

__all__ = ["PromptSet", "load_prompts", "read_prompt_file"]

SYNTH_POOL = 2000
HELDOUT_SEED_OFFSET = 7919


@dataclass(frozen=True)
class PromptSet:
    """Training prompts and held-out prompts (disjoint)."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]
    source: str

    def sample(self, n: int, seed: int, round_index: int) -> list[str]:
        """``n`` training prompts for one round: without replacement while the pool allows, seeded by (seed, round)."""
        rng = np.random.default_rng([seed, round_index, 1])
        idx = rng.choice(len(self.train), size=n, replace=n > len(self.train))
        return [self.train[i] for i in idx]


def read_prompt_file(path: str | os.PathLike[str], column: str | None = None) -> list[str]:
    """Non-empty prompts of a text file, or of a CSV/TSV column (``column``, else caption/prompt/text)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such prompts file")
    if column is None:
        return read_captions(path)
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read prompts ({exc})") from None
    if column not in frame.columns:
        raise InputError(f"{path}: has no column {column!r} (columns: {', '.join(frame.columns)})")
    prompts = [str(t).strip() for t in frame[column].dropna() if str(t).strip()]
    if not prompts:
        raise InputError(f"{path}: column {column!r} contains no prompts")
    return prompts


def _synth(source: str, n: int) -> list[str]:
    from rewardkit.synth import sample_captions

    _, _, seed = source.partition(":")
    try:
        seed_value = int(seed) if seed else 0
    except ValueError:
        raise InputError(f"prompts: {source!r}: expected synth or synth:SEED") from None
    return [c for c, _ in sample_captions(n, seed_value)]


def _read(source: str, column: str | None, n_synth: int) -> list[str]:
    if source == "synth" or source.startswith("synth:"):
        return _synth(source, n_synth)
    return read_prompt_file(source, column)


def load_prompts(source: str, *, seed: int = 0, heldout: str | None = None, heldout_size: int = 64,
                 column: str | None = None) -> PromptSet:
    """The training pool and held-out prompts of a run (see the module docstring).

    Parameters
    ----------
    source : str
        ``synth[:SEED]`` or a prompts file.
    seed : int
        Shuffles a file's prompts before the split.
    heldout : str, optional
        A separate held-out source; default: the synthetic source with
        another seed, or the last ``heldout_size`` prompts of the shuffled file.
    heldout_size : int
        Held-out prompts to keep (at most; fewer when the sources are small).
    column : str, optional
        CSV column of the prompts.
    """
    pool = list(dict.fromkeys(_read(source, column, SYNTH_POOL)))
    if heldout is None and (source == "synth" or source.startswith("synth:")):
        base = int(source.partition(":")[2] or 0)
        heldout = f"synth:{base + HELDOUT_SEED_OFFSET}"
    if heldout is not None:
        train = set(pool)
        held = [p for p in dict.fromkeys(_read(heldout, column, heldout_size * 2)) if p not in train][:heldout_size]
    else:
        if len(pool) < 2:
            raise InputError(f"{source}: needs at least 2 distinct prompts to keep some apart for evaluation")
        order = np.random.default_rng([seed, 2]).permutation(len(pool))
        pool = [pool[i] for i in order]
        k = min(heldout_size, max(1, len(pool) // 5))
        pool, held = pool[:-k], pool[-k:]
    if not pool:
        raise InputError(f"{source}: no training prompts left after removing held-out ones")
    return PromptSet(tuple(pool), tuple(held), source)
