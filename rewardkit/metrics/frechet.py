r"""Frechet distance between Gaussians fitted to embeddings (FAD), per song and per set.

For Gaussians :math:`N(\mu_1, \Sigma_1)` and :math:`N(\mu_2, \Sigma_2)`

.. math::

    FD = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
         - 2\operatorname{tr}\bigl(\Sigma_2^{1/2}\Sigma_1\Sigma_2^{1/2}\bigr)^{1/2}.

The last trace is the sum of square roots of the eigenvalues of
:math:`\Sigma_1\Sigma_2`. With any factor :math:`\Sigma_2 = FF^T` (Cholesky
when positive definite, else the symmetric square root) they are the
eigenvalues of the symmetric PSD matrix :math:`F^T\Sigma_1F`, found with a
symmetric eigensolver in float64 and clipped at zero. This never produces a
complex number, and the total is clipped at zero, so a distance is never
negative. (The usual recipe, ``scipy.linalg.sqrtm`` of the non-symmetric
product, is slower and has returned imaginary parts or negative distances
in several scipy releases.)

When a set has ``n <= d`` vectors its covariance has rank ``n - 1`` at most,
and with centred frames :math:`X_c` [n, d] the nonzero eigenvalues of
:math:`\Sigma_2^{1/2}\Sigma_1\Sigma_2^{1/2}` are those of the ``n x n``
matrix :math:`X_c\Sigma_2X_c^T/(n-1)`. Per-song FAD uses this form: a small
batched eigenproblem per song instead of a ``d x d`` square root.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from .._arrays import as_matrix
from ..errors import InputError
from ..stats import GaussianStats

# Working-set budget for batched per-song products, in float64 elements (~128 MB).
_BATCH_ELEMENTS = 16 * 2**20


def as_stats(x: Any, name: str) -> GaussianStats:
    """``x`` if it is :class:`GaussianStats`, else the stats of its rows (at least 2)."""
    if isinstance(x, GaussianStats):
        if x.count < 2:
            raise InputError(f"{name}: stats hold {x.count} sample(s); a covariance needs at least 2")
        return x
    return GaussianStats.from_samples(as_matrix(x, name, min_rows=2))


def _check_pair(a: GaussianStats, b: GaussianStats, name_a: str, name_b: str) -> None:
    if a.dim != b.dim:
        raise InputError(f"{name_a}: has dimension {a.dim} but {name_b} has {b.dim}")
    if a.encoder and b.encoder and a.encoder != b.encoder:
        raise InputError(
            f"{name_a}: built with encoder {a.encoder!r}, {name_b} with {b.encoder!r}; "
            "embeddings of different encoders cannot be compared")


def _sum_sqrt_eigvalsh(m: np.ndarray) -> np.ndarray:
    """Sum of square roots of the eigenvalues of symmetric PSD matrices [..., k, k].

    Eigenvalues below ``k * eps * max|w|`` are round-off of zero (a
    rank-deficient covariance has many) and count as zero: the square root
    would magnify each of them to about ``sqrt(eps)`` of the largest.
    """
    m = (m + np.swapaxes(m, -1, -2)) / 2  # remove round-off asymmetry before eigvalsh
    w = np.linalg.eigvalsh(m)
    tol = m.shape[-1] * np.finfo(np.float64).eps * np.abs(w).max(axis=-1, keepdims=True)
    return np.sqrt(np.where(w > tol, w, 0.0)).sum(axis=-1)


def frechet_distance(a: Any, b: Any) -> float:
    """Frechet distance between the Gaussians of two embedding sets.

    Parameters
    ----------
    a, b : array-like, torch.Tensor [shape=(n, d)] or GaussianStats
        Embeddings (at least 2 rows) or their precomputed stats. ``b`` is
        treated as the reference: a factor of its covariance
        (:meth:`GaussianStats.cov_factor`) is cached on the stats object and
        reused by later calls.

    Returns
    -------
    float
        The distance, >= 0. Identical inputs give 0 up to round-off
        (about 1e-12 of the covariance trace).

    Raises
    ------
    InputError
        Mismatched dimensions or encoders, fewer than 2 samples, NaN/Inf.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(5000, 4)), rng.normal(size=(5000, 4)) + 1.0
    >>> round(frechet_distance(x, y), 1)   # ||mu||^2 = 4
    4.0
    """
    sa, sb = as_stats(a, "a"), as_stats(b, "b")
    _check_pair(sa, sb, "a", "b")
    f = sb.cov_factor()
    cross = _sum_sqrt_eigvalsh(f.T @ sa.cov @ f)   # spectrum of S_a S_b
    diff = sa.mean - sb.mean
    fd = diff @ diff + np.trace(sa.cov) + np.trace(sb.cov) - 2.0 * cross
    return max(float(fd), 0.0)


def per_song_frechet(songs: Sequence[Any] | Any, ref: Any, *,
                     single_frame: Literal["raise", "point"] = "raise") -> np.ndarray:
    """Frechet distance of each song's frame embeddings to one reference Gaussian.

    Parameters
    ----------
    songs : sequence of array-like [shape=(n_i, d)], or an array [shape=(s, n, d)]
        Frame embeddings, one matrix per song; songs may have different ``n_i``.
    ref : GaussianStats or array-like [shape=(m, d)]
        Reference statistics (or embeddings to fit them from).
    single_frame : {"raise", "point"}
        What to do with a song of one frame, whose sample covariance is
        undefined. ``"raise"`` (default) raises :class:`InputError` naming
        the song; ``"point"`` treats the song as a point mass (zero
        covariance), giving ``||x - mu_ref||^2 + tr(Sigma_ref)``. A song with
        zero frames always raises.

    Returns
    -------
    np.ndarray [shape=(len(songs),)], float64
        One distance per song, in input order, each >= 0.

    Notes
    -----
    A song with ``n_i <= d`` frames uses the low-rank form (an
    ``n_i x n_i`` eigenproblem on ``X_c Sigma_ref X_c^T``); songs are padded
    with zero rows into buckets of similar length, which leaves the nonzero
    eigenvalues unchanged, and each bucket is one batched product and one
    batched ``eigvalsh``. Songs with ``n_i > d`` use the dense form with the
    cached factor of the reference covariance. Both agree with the
    dense formula to round-off (tested at 1e-6 relative).
    """
    r = as_stats(ref, "ref")
    if isinstance(songs, np.ndarray) and songs.ndim == 3:
        songs = list(songs)
    if isinstance(songs, (str, bytes)) or not isinstance(songs, Sequence):
        raise InputError(f"songs: expected a list of (n_i, d) arrays, got {type(songs).__name__}")
    if single_frame not in ("raise", "point"):
        raise InputError(f"single_frame: expected 'raise' or 'point', got {single_frame!r}")
    frames = [as_matrix(s, f"songs[{i}]", dim=r.dim) for i, s in enumerate(songs)]
    if single_frame == "raise":
        for i, f in enumerate(frames):
            if f.shape[0] < 2:
                raise InputError(
                    f"songs[{i}]: has 1 frame; a covariance needs at least 2 "
                    "(pass single_frame='point' to treat it as a point mass)")

    d = r.dim
    out = np.empty(len(frames))
    means = np.array([f.mean(axis=0) for f in frames]).reshape(len(frames), d)
    diff = means - r.mean
    base = np.einsum("ij,ij->i", diff, diff) + np.trace(r.cov)   # ||mu_i - mu_r||^2 + tr S_r
    lengths = np.array([f.shape[0] for f in frames], dtype=np.int64)

    single = np.flatnonzero(lengths == 1)
    out[single] = base[single]

    low = np.flatnonzero((lengths >= 2) & (lengths <= d))
    for idx in _buckets(lengths, low, d):
        out[idx] = base[idx] + _lowrank_terms([frames[i] for i in idx], means[idx], r.cov)

    dense = np.flatnonzero(lengths > d)
    step = max(1, _BATCH_ELEMENTS // (3 * d * d))
    for start in range(0, dense.size, step):
        idx = dense[start:start + step]
        out[idx] = base[idx] + _dense_terms([frames[i] for i in idx], r.cov_factor())
    return np.clip(out, 0.0, None)


def _buckets(lengths: np.ndarray, members: np.ndarray, d: int):
    """Split song indices into batches of similar length that fit the memory budget.

    A bucket holds songs whose padded length is the same power of two (capped
    at ``d``), so padding at most doubles the work of any song.
    """
    if members.size == 0:
        return
    padded = np.minimum(2 ** np.ceil(np.log2(lengths[members])).astype(np.int64), d)
    for size in np.unique(padded):
        group = members[padded == size]
        step = max(1, _BATCH_ELEMENTS // (2 * int(size) * d + int(size) ** 2))
        for start in range(0, group.size, step):
            yield group[start:start + step]


def _lowrank_terms(frames: list[np.ndarray], means: np.ndarray, ref_cov: np.ndarray) -> np.ndarray:
    """tr(S_i) - 2 tr sqrt(S_r^1/2 S_i S_r^1/2) for songs with n_i <= d, batched."""
    n = np.array([f.shape[0] for f in frames])
    size = int(n.max())
    d = ref_cov.shape[0]
    padded = np.zeros((len(frames), size, d))
    for j, (f, mu) in enumerate(zip(frames, means, strict=True)):
        padded[j, : f.shape[0]] = f - mu
    scale = 1.0 / (n - 1)
    trace_song = np.einsum("bij,bij->b", padded, padded) * scale
    proj = (padded.reshape(-1, d) @ ref_cov).reshape(padded.shape)      # X_c S_r
    gram = np.matmul(proj, np.swapaxes(padded, 1, 2)) * scale[:, None, None]  # X_c S_r X_c^T / (n-1)
    return trace_song - 2.0 * _sum_sqrt_eigvalsh(gram)


def _dense_terms(frames: list[np.ndarray], ref_factor: np.ndarray) -> np.ndarray:
    """The same terms for songs with n_i > d, from d x d covariances."""
    covs = np.stack([np.cov(f, rowvar=False).reshape(ref_factor.shape) for f in frames])
    trace_song = np.trace(covs, axis1=1, axis2=2)
    product = ref_factor.T @ covs @ ref_factor
    return trace_song - 2.0 * _sum_sqrt_eigvalsh(product)


class FrechetInfResult(NamedTuple):
    """FAD-inf: the Frechet distance extrapolated to infinitely many samples."""

    value: float
    """Intercept of the fit of FD against 1/n (may be slightly negative: it is an extrapolation)."""
    slope: float
    """Slope of that fit: how strongly the finite-sample FD depends on n."""
    r2: float
    """Coefficient of determination of the fit; far below 1 means the 1/n model fits poorly."""
    points: list[tuple[int, float]]
    """The ``(n, FD)`` pairs the fit used."""


def frechet_distance_inf(x: Any, ref: Any, *, steps: int = 25, min_n: int = 500,
                         max_n: int | None = None, seed: int = 0) -> FrechetInfResult:
    """FAD-inf: extrapolate the Frechet distance to ``n -> infinity`` (Chung et al.; fadtk).

    The finite-sample FD is biased upwards by a term roughly proportional
    to ``1/n``. For ``steps`` values of ``n`` evenly spaced in
    ``[min_n, max_n]``, this draws ``n`` rows of ``x`` without replacement,
    computes their FD to ``ref``, and fits ``FD = value + slope / n`` by
    least squares.

    Parameters
    ----------
    x : array-like [shape=(N, d)]
        Embeddings of the evaluated set.
    ref : GaussianStats or array-like [shape=(m, d)]
        Reference statistics (or embeddings).
    steps : int
        Number of subset sizes (>= 2).
    min_n, max_n : int
        Smallest and largest subset size; ``max_n`` defaults to ``N``.
    seed : int
        Seed of the numpy generator that draws the subsets.
    """
    a = as_matrix(x, "x", min_rows=2)
    r = as_stats(ref, "ref")
    if a.shape[1] != r.dim:
        raise InputError(f"x: has dimension {a.shape[1]} but ref has {r.dim}")
    max_n = a.shape[0] if max_n is None else max_n
    if not 2 <= min_n < max_n <= a.shape[0]:
        raise InputError(
            f"min_n/max_n: need 2 <= min_n < max_n <= len(x) = {a.shape[0]}, got min_n={min_n}, "
            f"max_n={max_n}; lower min_n for small sets")
    if steps < 2:
        raise InputError(f"steps: need at least 2 subset sizes, got {steps}")
    rng = np.random.default_rng(seed)
    ns = np.unique(np.linspace(min_n, max_n, steps).astype(np.int64))
    fds = np.array([frechet_distance(a[rng.choice(a.shape[0], int(n), replace=False)], r) for n in ns])
    inv = 1.0 / ns
    slope, intercept = np.polyfit(inv, fds, 1)
    resid = fds - (slope * inv + intercept)
    total = np.sum((fds - fds.mean()) ** 2)
    r2 = 1.0 - float(np.sum(resid**2) / total) if total > 0 else 1.0
    return FrechetInfResult(float(intercept), float(slope), r2,
                            [(int(n), float(f)) for n, f in zip(ns, fds, strict=True)])
