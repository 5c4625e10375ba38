"""What a reward is: one interface for instance, instance-to-distribution and distribution rewards.

Every reward is *higher is better* (Frechet and kernel distances are
negated) and scores a batch of generated clips with their prompts in one
call, :meth:`Reward.score`, returning :class:`Scored`:

* ``Scored.values`` [shape=(n,)]: one number per clip. For instance and
  instance-to-distribution rewards it is the clip's reward; for
  distribution rewards it is the clip's *leave-one-out contribution*
  ``R(set) - R(set without the clip)`` (positive: the clip makes the set
  better), which is what a per-sample splitter needs.
* ``Scored.set_value(idx)``: the reward of the sub-set ``idx`` of the
  batch (all clips by default). For per-clip rewards it is the mean of
  ``values[idx]``; for distribution rewards it is the set metric itself.
  Set-vs-set splitters and bootstrap win rates use it.

Embeddings are shared between rewards that use the same encoder through an
:class:`EmbeddingMemo`, so ``fad + per_song_fad + vendi`` on one encoder
embeds the batch once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..embedding import embed_arrays
from ..encoders.base import Encoder
from ..errors import InputError

__all__ = ["DISTRIBUTION", "INSTANCE", "INSTANCE_TO_DISTRIBUTION", "KINDS", "Batch", "EmbeddingMemo", "Reward",
           "Scored"]

INSTANCE = "instance"
INSTANCE_TO_DISTRIBUTION = "instance-to-distribution"
DISTRIBUTION = "distribution"
KINDS = (INSTANCE, INSTANCE_TO_DISTRIBUTION, DISTRIBUTION)


@dataclass
class Batch:
    """Generated clips to score: mono float arrays at one rate, one prompt each."""

    audio: Sequence[np.ndarray]
    sample_rate: int
    prompts: Sequence[str]

    def __post_init__(self):
        if len(self.audio) != len(self.prompts):
            raise InputError(f"prompts: need one per clip, got {len(self.prompts)} for {len(self.audio)} clips")
        if len(self.audio) == 0:
            raise InputError("audio: the batch is empty")
        if int(self.sample_rate) <= 0:
            raise InputError(f"sample_rate: must be positive, got {self.sample_rate}")


@dataclass
class EmbeddingMemo:
    """Frame embeddings of one batch per encoder fingerprint (and text embeddings per prompt)."""

    frames: dict[str, list[np.ndarray]] = field(default_factory=dict)
    text: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def clip_frames(self, batch: Batch, encoder: Encoder) -> list[np.ndarray]:
        key = encoder.fingerprint()
        if key not in self.frames:
            self.frames[key] = embed_arrays(batch.audio, batch.sample_rate, encoder)
        return self.frames[key]

    def pooled(self, batch: Batch, encoder: Encoder) -> np.ndarray:
        """One clip embedding per clip (float64 mean of its frames) [shape=(n, dim)]."""
        return np.stack([f.mean(axis=0, dtype=np.float64) for f in self.clip_frames(batch, encoder)])

    def prompt_embeddings(self, prompts: Sequence[str], encoder: Encoder) -> np.ndarray:
        key = encoder.fingerprint()
        missing = [p for p in dict.fromkeys(prompts) if (key, p) not in self.text]
        if missing:
            for p, e in zip(missing, np.asarray(encoder.embed_text(list(missing)), dtype=np.float64), strict=True):
                self.text[(key, p)] = e
        return np.stack([self.text[(key, p)] for p in prompts])


@dataclass
class Scored:
    """One reward's verdict on one batch (see the module docstring)."""

    name: str
    kind: str
    values: np.ndarray
    _set_value: Callable[[np.ndarray], float] | None = None

    def set_value(self, idx: Sequence[int] | np.ndarray | None = None) -> float:
        """The reward of the clips ``idx`` (indices into the batch, repeats allowed) as one set."""
        idx = np.arange(self.values.shape[0]) if idx is None else np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            raise InputError(f"{self.name}: cannot score an empty set")
        if self._set_value is None:
            return float(np.mean(self.values[idx]))
        return float(self._set_value(idx))


class Reward(abc.ABC):
    """Base class of rewards. Subclasses set :attr:`kind` and implement :meth:`score`.

    Attributes
    ----------
    name : str
        What logs and tables call it (``fad``, ``0.5*aesthetics+0.5*clap_score``...).
    kind : str
        One of :data:`KINDS`.
    min_set : int
        Fewest clips :meth:`Scored.set_value` can score (2 for covariance-based metrics).
    """

    name: str = "reward"
    kind: str = INSTANCE
    min_set: int = 1

    @abc.abstractmethod
    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        """Score a batch; ``memo`` shares embeddings with other rewards scoring the same batch."""

    def describe(self) -> dict[str, object]:
        """JSON-able facts recorded with a run (name, kind, encoder fingerprint, reference...)."""
        return {"name": self.name, "kind": self.kind}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.kind})>"


def finite(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as float64, or an InputError naming the reward when any is NaN/Inf."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values))[0][0])
        raise InputError(f"reward {name}: non-finite value {values[bad]} for clip {bad}")
    return values
