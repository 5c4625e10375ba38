"""Pure metric functions on embedding arrays: no files, no models, float64 throughout."""

from .frechet import FrechetInfResult, frechet_distance, frechet_distance_inf, per_song_frechet
from .kernel import kernel_distance, median_pairwise_distance
from .similarity import SetSimilarity, cosine_scores, similarity_to_set
from .vendi import vendi_contributions, vendi_from_eigenvalues, vendi_score, vendi_score_from_kernel

__all__ = [
    "FrechetInfResult", "SetSimilarity", "cosine_scores", "frechet_distance", "frechet_distance_inf",
    "kernel_distance", "median_pairwise_distance", "per_song_frechet", "similarity_to_set",
    "vendi_contributions", "vendi_from_eigenvalues", "vendi_score", "vendi_score_from_kernel",
]
