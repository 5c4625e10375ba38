"""From one round's rewards to demonstrations: DPO pairs or KTO labels.

A round holds P prompts x K samples, sample ``p * K + k`` being the k-th
generation for prompt p. Every splitter sees the reward's per-sample values
(for a distribution reward: leave-one-out contributions) and, for
set-vs-set, the reward's set values.

==============  ========  =================================================================
splitter        loss      demonstrations
==============  ========  =================================================================
``best-worst``  DPO       per prompt, the best vs the worst sample by per-sample value
                          (for distribution rewards that is leave-one-out contribution)
``all-pairs``   DPO       per prompt, every pair of samples whose values differ, the higher
                          one winning: K(K-1)/2 pairs from the same K generations
``set``         DPO, KTO  the paper's D1/D2: the first K/2 samples of every prompt form one
                          on-policy set, the rest the other; the set with the higher set
                          reward is positive. DPO pairs (D1 sample j, D2 sample j) per
                          prompt; KTO labels every sample by its set
``prompt``      KTO       desirable when above its prompt's median value
``batch``       KTO       desirable when above the median value of the whole round
==============  ========  =================================================================

Every DPO pair carries a group: the pairs of one group share their timestep
and noise in the loss, so a sample that is in several pairs of its group
(``all-pairs``) is re-noised and denoised once per update, not once per pair
(K samples instead of K(K-1) for a prompt). ``all-pairs`` groups by prompt;
the other splitters, whose samples are each in one pair, give every pair its
own group.

Ties give no demonstration (a prompt whose samples are all equal, or two
equal sets), and a KTO split with only one label present is empty: KTO's
reference point z needs both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rewardkit.errors import InputError
from rewardkit.rewards import DISTRIBUTION, Scored

__all__ = ["DPO_SPLITTERS", "KTO_SPLITTERS", "Split", "check_splitter", "default_splitter", "split"]

DPO_SPLITTERS = ("best-worst", "all-pairs", "set")
KTO_SPLITTERS = ("prompt", "batch", "set")


@dataclass
class Split:
    """Demonstrations of one round: DPO ``pairs`` [shape=(m, 2)], winner first, or KTO ``labels``."""

    pairs: np.ndarray | None = None          # int indices, (winner, loser)
    groups: np.ndarray | None = None         # DPO: one int per pair; a group shares timestep and noise
    samples: np.ndarray | None = None        # KTO: sample indices
    desirable: np.ndarray | None = None      # KTO: bool, one per sample
    set_values: tuple[float, float] | None = None

    @property
    def size(self) -> int:
        if self.pairs is not None:
            return int(self.pairs.shape[0])
        return 0 if self.samples is None else int(self.samples.shape[0])

    @property
    def counts(self) -> tuple[int, int]:
        """(positive, negative) demonstrations."""
        if self.pairs is not None:
            return self.size, self.size
        if self.desirable is None:
            return 0, 0
        return int(self.desirable.sum()), int((~self.desirable).sum())


def _own_groups(pairs: np.ndarray, **fields) -> Split:
    """A split whose every pair is its own group (each sample is in one pair)."""
    return Split(pairs=pairs, groups=np.arange(pairs.shape[0], dtype=np.int64), **fields)


def default_splitter(loss: str, reward_kind: str) -> str:
    """``best-worst`` (DPO) or ``prompt`` (KTO) for per-sample rewards; ``set`` for distribution rewards."""
    if reward_kind == DISTRIBUTION:
        return "set"
    return "best-worst" if loss == "dpo" else "prompt"


def check_splitter(splitter: str, loss: str, samples_per_prompt: int) -> None:
    """Fail before training when the splitter cannot work with this loss and K."""
    allowed = DPO_SPLITTERS if loss == "dpo" else KTO_SPLITTERS
    if splitter not in allowed:
        raise InputError(f"splitter: {splitter!r} does not go with loss {loss}; choose one of {', '.join(allowed)}")
    if splitter in ("best-worst", "all-pairs", "set", "prompt") and samples_per_prompt < 2:
        raise InputError(f"samples-per-prompt: the {splitter} splitter needs K >= 2 samples per prompt, "
                         f"got {samples_per_prompt}")
    if splitter == "set" and samples_per_prompt % 2:
        raise InputError(f"samples-per-prompt: the set splitter halves each prompt's samples, so K must be even, "
                         f"got {samples_per_prompt}")


def split(scored: Scored, splitter: str, loss: str, prompts: int, samples_per_prompt: int) -> Split:
    """The demonstrations of one round (see the module docstring)."""
    k = samples_per_prompt
    values = np.asarray(scored.values, dtype=np.float64).reshape(prompts, k)
    index = np.arange(prompts * k).reshape(prompts, k)
    if splitter == "set":
        first, second = index[:, : k // 2].reshape(-1), index[:, k // 2:].reshape(-1)
        v1, v2 = scored.set_value(first), scored.set_value(second)
        if v1 == v2:
            return Split(set_values=(v1, v2))
        win, lose = (first, second) if v1 > v2 else (second, first)
        if loss == "dpo":
            return _own_groups(np.stack([win, lose], axis=1), set_values=(v1, v2))
        samples = np.concatenate([win, lose])
        desirable = np.concatenate([np.ones(win.size, bool), np.zeros(lose.size, bool)])
        return Split(samples=samples, desirable=desirable, set_values=(v1, v2))
    if splitter == "best-worst":
        best, worst = values.argmax(axis=1), values.argmin(axis=1)
        keep = values.max(axis=1) > values.min(axis=1)
        rows = np.nonzero(keep)[0]
        return _own_groups(np.stack([index[rows, best[rows]], index[rows, worst[rows]]], axis=1).reshape(-1, 2))
    if splitter == "all-pairs":
        rows, groups, first, second = [], [], *np.triu_indices(k, 1)
        for p in range(prompts):
            v = values[p]
            keep = v[first] != v[second]
            win = np.where(v[first] > v[second], first, second)[keep]
            lose = np.where(v[first] > v[second], second, first)[keep]
            rows.append(np.stack([index[p, win], index[p, lose]], axis=1))
            groups.append(np.full(win.size, p, dtype=np.int64))
        return Split(pairs=np.concatenate(rows).reshape(-1, 2), groups=np.concatenate(groups))
    if splitter in ("prompt", "batch"):
        threshold = np.median(values, axis=1, keepdims=True) if splitter == "prompt" else np.median(values)
        above, below = values > threshold, values < threshold
        chosen = above | below
        if not above.any() or not below.any():
            return Split(samples=np.zeros(0, np.int64), desirable=np.zeros(0, bool))
        return Split(samples=index[chosen], desirable=above[chosen])
    raise InputError(f"splitter: unknown {splitter!r}; known: best-worst, all-pairs, set, prompt, batch")
