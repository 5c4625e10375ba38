"""rewardkit: embeddings in, audio-generation metrics and rewards out.

The metric core works on arrays of embeddings (numpy or torch, CPU or CUDA)
and computes in float64::

    import rewardkit as rk
    ref = rk.GaussianStats.from_samples(reference_embeddings)
    rk.frechet_distance(generated_embeddings, ref)

Importing rewardkit loads numpy and scipy only; no model, no network.
"""

from ._version import __version__
from .errors import InputError, MissingDependencyError, RewardkitError, StatsFileError
from .metrics import (
    FrechetInfResult,
    SetSimilarity,
    cosine_scores,
    frechet_distance,
    frechet_distance_inf,
    kernel_distance,
    median_pairwise_distance,
    per_song_frechet,
    similarity_to_set,
    vendi_contributions,
    vendi_score,
    vendi_score_from_kernel,
)
from .stats import GaussianStats

# The scoring pipeline pulls in pandas and the audio stack: load it on first use.
_LAZY = {"score": "scoring", "ScoreReport": "scoring", "Reference": "reference", "build_reference": "reference",
         "EmbeddingCache": "cache", "make_reward": "rewards", "make_rewards": "rewards"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")

__all__ = [
    "EmbeddingCache",
    "FrechetInfResult",
    "GaussianStats",
    "InputError",
    "MissingDependencyError",
    "Reference",
    "RewardkitError",
    "ScoreReport",
    "SetSimilarity",
    "StatsFileError",
    "__version__",
    "build_reference",
    "cosine_scores",
    "frechet_distance",
    "frechet_distance_inf",
    "kernel_distance",
    "make_reward",
    "make_rewards",
    "median_pairwise_distance",
    "per_song_frechet",
    "score",
    "similarity_to_set",
    "vendi_contributions",
    "vendi_score",
    "vendi_score_from_kernel",
]
