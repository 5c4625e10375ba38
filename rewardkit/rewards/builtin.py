"""The rewards rewardkit ships: its metrics turned into higher-is-better scores of generated batches.

========================  ==========================  =====================================================
name                      kind                        value of one clip / of a set
========================  ==========================  =====================================================
``fad``                   distribution                ``-FAD`` of the set's frames to the reference stats
``kad``                   distribution                ``-KAD`` (unbiased RBF MMD^2) of clip embeddings to the
                                                      reference items, bandwidth fixed by the reference
``vendi``                 distribution                Vendi score (order ``q``) of the clip embeddings
``per_song_fad``          instance-to-distribution    ``-FAD`` of the clip's own frames to the reference
``similarity``            instance-to-distribution    mean (or max) cosine to the reference items (audio or
                                                      caption embeddings)
``clap_score``            instance                    cosine of the clip with its prompt (text-audio encoder)
``aesthetics``            instance                    predicted 1-5 rating of an aesthetics head
========================  ==========================  =====================================================

A distribution reward's per-clip values are leave-one-out contributions
(see :mod:`rewardkit.rewards.base`). References are built once, when the
reward is made (an audio folder through the embedding cache, a stats file,
or a captions file for a text-capable encoder), so a bad reference fails
before any generation or training starts.
"""

from __future__ import annotations

import numpy as np

from ..aesthetics import AestheticsPredictor
from ..encoders.base import Encoder
from ..errors import InputError
from ..metrics.frechet import frechet_distance, per_song_frechet
from ..metrics.kernel import kernel_distance
from ..metrics.similarity import cosine_scores, similarity_to_set
from ..metrics.vendi import vendi_contributions, vendi_score
from ..reference import Reference
from .base import DISTRIBUTION, INSTANCE, INSTANCE_TO_DISTRIBUTION, Batch, EmbeddingMemo, Reward, Scored, finite

__all__ = ["AestheticsReward", "ClapScoreReward", "FadReward", "KadReward", "PerSongFadReward",
           "SimilarityReward", "VendiReward", "leave_one_out"]


def leave_one_out(set_value, n: int) -> np.ndarray:
    """``set_value(all) - set_value(all but i)`` for each i [shape=(n,)]."""
    everything = np.arange(n)
    full = set_value(everything)
    return np.array([full - set_value(np.delete(everything, i)) for i in range(n)])


class EncoderReward(Reward):
    """A reward computed from one encoder's embeddings (and maybe a reference)."""

    def __init__(self, encoder: Encoder, reference: Reference | None = None):
        self.encoder = encoder
        self.reference = reference
        if reference is not None:
            reference.check_encoder(encoder.fingerprint())

    def describe(self) -> dict[str, object]:
        out = {**super().describe(), "encoder": self.encoder.fingerprint()}
        if self.reference is not None:
            out["reference"] = {"source": self.reference.source, "kind": self.reference.kind,
                                "items": None if self.reference.items is None else int(self.reference.items.shape[0])}
        return out

    def _items(self) -> np.ndarray:
        items = self.reference.items if self.reference is not None else None
        if items is None or items.shape[0] < 2:
            raise InputError(f"{self.name}: reference {self.reference.source if self.reference else '(none)'} "
                             "has no per-item embeddings (need >= 2); build it from an audio folder or captions")
        return items


class FadReward(EncoderReward):
    """``-FAD`` of the whole set (frames of all clips) to the reference Gaussian."""

    name, kind, min_set = "fad", DISTRIBUTION, 2

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        frames = (memo or EmbeddingMemo()).clip_frames(batch, self.encoder)
        stats = self.reference.stats

        def set_value(idx: np.ndarray) -> float:
            return -frechet_distance(np.concatenate([frames[i] for i in idx]).astype(np.float64), stats)

        return Scored(self.name, self.kind, finite(leave_one_out(set_value, len(frames)), self.name), set_value)


class KadReward(EncoderReward):
    """``-KAD``: the unbiased RBF MMD^2 of the clip embeddings to the reference items."""

    name, kind, min_set = "kad", DISTRIBUTION, 2

    def __init__(self, encoder: Encoder, reference: Reference):
        super().__init__(encoder, reference)
        from ..metrics.kernel import median_pairwise_distance

        # One kernel for the whole run: the bandwidth comes from the fixed reference.
        self.bandwidth = median_pairwise_distance(self._items())

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        pooled = (memo or EmbeddingMemo()).pooled(batch, self.encoder)
        items = self._items()

        def set_value(idx: np.ndarray) -> float:
            return -kernel_distance(pooled[idx], items, bandwidth=self.bandwidth)

        return Scored(self.name, self.kind, finite(leave_one_out(set_value, len(pooled)), self.name), set_value)


class VendiReward(EncoderReward):
    """The Vendi score (order ``q``, cosine kernel) of the set's clip embeddings: diversity."""

    name, kind, min_set = "vendi", DISTRIBUTION, 2

    def __init__(self, encoder: Encoder, q: float = 1.0):
        super().__init__(encoder, None)
        self.q = float(q)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "q": self.q}

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        pooled = (memo or EmbeddingMemo()).pooled(batch, self.encoder)
        values = vendi_contributions(pooled, self.q) if len(pooled) >= 2 else np.zeros(len(pooled))
        return Scored(self.name, self.kind, finite(values, self.name),
                      lambda idx: vendi_score(pooled[idx], self.q))


class PerSongFadReward(EncoderReward):
    """``-FAD`` of each clip's own frames to the reference (a one-frame clip is a point mass)."""

    name, kind = "per_song_fad", INSTANCE_TO_DISTRIBUTION

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        frames = (memo or EmbeddingMemo()).clip_frames(batch, self.encoder)
        values = -per_song_frechet(frames, self.reference.stats, single_frame="point")
        return Scored(self.name, self.kind, finite(values, self.name))


class SimilarityReward(EncoderReward):
    """Cosine similarity of each clip to an exemplar set: the mean over exemplars, or the nearest one."""

    name, kind = "similarity", INSTANCE_TO_DISTRIBUTION

    def __init__(self, encoder: Encoder, reference: Reference, stat: str = "mean"):
        super().__init__(encoder, reference)
        if stat not in ("mean", "max"):
            raise InputError(f"similarity: stat must be 'mean' or 'max', got {stat!r}")
        self.stat = stat
        self._items()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "stat": self.stat}

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        pooled = (memo or EmbeddingMemo()).pooled(batch, self.encoder)
        sims = similarity_to_set(pooled, self._items())
        return Scored(self.name, self.kind, finite(getattr(sims, self.stat), self.name))


class ClapScoreReward(EncoderReward):
    """Cosine similarity of each clip with its own prompt, in a text-audio encoder's joint space."""

    name, kind = "clap_score", INSTANCE

    def __init__(self, encoder: Encoder):
        if "text" not in encoder.modalities:
            raise InputError(f"clap_score: encoder {encoder.name!r} has no text tower; use a text-audio encoder "
                             "such as synthclap or clap")
        super().__init__(encoder, None)

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        memo = memo or EmbeddingMemo()
        pooled = memo.pooled(batch, self.encoder)
        if any(not p.strip() for p in batch.prompts):
            raise InputError("clap_score: every clip needs a non-empty prompt")
        text = memo.prompt_embeddings(batch.prompts, self.encoder)
        return Scored(self.name, self.kind, finite(cosine_scores(pooled, text), self.name))


class AestheticsReward(EncoderReward):
    """The rating an aesthetics head predicts for each clip (1 to 5)."""

    name, kind = "aesthetics", INSTANCE

    def __init__(self, encoder: Encoder, head: str | None = None):
        super().__init__(encoder, None)
        predictor = AestheticsPredictor(head) if head else AestheticsPredictor.default_for(encoder.name)
        if predictor is None:
            raise InputError(f"aesthetics: no head ships for encoder {encoder.name!r}; train one with "
                             "`rewardkit aesthetics train` and pass head=PATH")
        predictor.check_encoder(encoder.fingerprint())
        self.predictor = predictor

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "head": str(self.predictor.weights)}

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        memo = memo or EmbeddingMemo()
        if hasattr(self.predictor, "score_frames"):
            values = self.predictor.score_frames(memo.clip_frames(batch, self.encoder))
        else:
            values = self.predictor.score(memo.pooled(batch, self.encoder))
        return Scored(self.name, self.kind, finite(values, self.name))
