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

__all__ = [
    "FrechetInfResult", "GaussianStats", "InputError", "MissingDependencyError", "RewardkitError",
    "SetSimilarity", "StatsFileError", "__version__", "cosine_scores", "frechet_distance",
    "frechet_distance_inf", "kernel_distance", "median_pairwise_distance", "per_song_frechet",
    "similarity_to_set", "vendi_contributions", "vendi_score", "vendi_score_from_kernel",
]
