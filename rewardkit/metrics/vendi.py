r"""The Vendi score: the effective number of distinct items in a set (Friedman & Dieng, 2023).

For a similarity kernel with ``k(x, x) = 1`` and kernel matrix ``K``
[n, n], let :math:`\lambda_i` be the eigenvalues of ``K / n`` (they are
nonnegative and sum to 1). The Vendi score of order ``q`` is the
exponential of their Renyi entropy,

.. math::

    VS_q = \exp\Bigl(\frac{1}{1-q}\log\sum_i\lambda_i^q\Bigr),\qquad
    VS_1 = \exp\Bigl(-\sum_i\lambda_i\log\lambda_i\Bigr),\qquad
    VS_\infty = 1/\max_i\lambda_i.

It is 1 for ``n`` identical items and ``n`` for ``n`` mutually orthogonal
ones. Small ``q`` weighs rare items more, large ``q`` common ones.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._arrays import as_matrix, unit_rows
from ..errors import InputError
from .kernel import median_pairwise_distance

_BATCH_ELEMENTS = 16 * 2**20


def _check_order(q: float) -> float:
    q = float(q)
    if not (q > 0):  # also rejects NaN
        raise InputError(f"q: the order must be positive (or inf), got {q}")
    return q


def vendi_from_eigenvalues(eigenvalues: Any, q: float = 1.0) -> np.ndarray:
    """Vendi score from eigenvalues of ``K / n`` [shape=(..., k)]; one score per leading index.

    Eigenvalues below ``k * eps * max`` are round-off of zero and are
    dropped; the rest are renormalised to sum to 1.
    """
    q = _check_order(q)
    w = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    top = w.max(axis=-1, keepdims=True)
    w = np.where(w > w.shape[-1] * np.finfo(np.float64).eps * top, w, 0.0)
    w = w / w.sum(axis=-1, keepdims=True)
    if q == 1.0:
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(w > 0, w * np.log(w), 0.0).sum(axis=-1)
    elif np.isinf(q):
        h = -np.log(w.max(axis=-1))
    else:
        h = np.log((w**q).sum(axis=-1)) / (1.0 - q)  # 0 ** q = 0 for q > 0
    return np.exp(h)


def vendi_score_from_kernel(kernel_matrix: Any, q: float = 1.0) -> float:
    """Vendi score of a precomputed similarity matrix [shape=(n, n)].

    The matrix must be symmetric, positive semidefinite and have ones on
    the diagonal (normalise ``K_ij / sqrt(K_ii K_jj)`` first otherwise).
    """
    k = as_matrix(kernel_matrix, "kernel_matrix")
    n = k.shape[0]
    if k.shape != (n, n):
        raise InputError(f"kernel_matrix: expected a square matrix, got shape {k.shape}")
    if not np.allclose(k, k.T, rtol=0, atol=1e-8):
        raise InputError("kernel_matrix: is not symmetric")
    if not np.allclose(np.diag(k), 1.0, rtol=0, atol=1e-6):
        raise InputError("kernel_matrix: diagonal must be all ones (k(x, x) = 1); normalise the kernel")
    w = np.linalg.eigvalsh((k + k.T) / (2 * n))
    if w[0] < -1e-8:
        raise InputError(f"kernel_matrix: is not positive semidefinite (eigenvalue {w[0] * n:.3g})")
    return float(vendi_from_eigenvalues(w, _check_order(q)))


def _prepare(x: Any, kernel: str, bandwidth: float | None, min_rows: int) -> np.ndarray:
    a = as_matrix(x, "x", min_rows=min_rows)
    if kernel == "cosine":
        return unit_rows(a, "x")
    if kernel == "rbf":
        return a
    raise InputError(f"kernel: expected 'cosine' or 'rbf', got {kernel!r}")


def _rbf_matrix(a: np.ndarray, bandwidth: float | None) -> np.ndarray:
    sigma = median_pairwise_distance(a) if bandwidth is None else float(bandwidth)
    if not np.isfinite(sigma) or sigma <= 0:
        raise InputError(f"bandwidth: is {sigma}; the RBF kernel needs a positive, finite width")
    sq = (a * a).sum(1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * a @ a.T, 0.0, None)
    return np.exp(-d2 / (2.0 * sigma * sigma))


def vendi_score(x: Any, q: float = 1.0, *, kernel: Literal["cosine", "rbf"] = "cosine",
                bandwidth: float | None = None) -> float:
    """Vendi score of the rows of ``x`` [shape=(n, d)].

    Parameters
    ----------
    x : array-like or torch.Tensor [shape=(n, d)]
        Embeddings, n >= 1.
    q : float
        Order: any positive number or ``float("inf")``; 1 is the original Vendi score.
    kernel : {"cosine", "rbf"}
        ``"cosine"``: ``K = X^ X^T`` with unit-norm rows ``X^``. When
        ``n > d`` the eigenvalues come from the ``d x d`` dual ``X^T X / n``,
        which has the same nonzero spectrum, so the cost is
        ``O(n d min(n, d))``. ``"rbf"``: ``exp(-||a - b||^2 / (2 sigma^2))``
        with ``sigma`` = ``bandwidth`` or the median pairwise distance of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> round(vendi_score(np.eye(5)), 6), round(vendi_score(np.ones((5, 3))), 6)
    (5.0, 1.0)
    """
    q = _check_order(q)
    a = _prepare(x, kernel, bandwidth, 1)
    n, d = a.shape
    if kernel == "rbf":
        return float(vendi_from_eigenvalues(np.linalg.eigvalsh(_rbf_matrix(a, bandwidth) / n), q))
    gram = a.T @ a if n > d else a @ a.T
    return float(vendi_from_eigenvalues(np.linalg.eigvalsh(gram / n), q))


def vendi_contributions(x: Any, q: float = 1.0, *, kernel: Literal["cosine", "rbf"] = "cosine",
                        bandwidth: float | None = None) -> np.ndarray:
    """Leave-one-out change of the Vendi score for each row of ``x`` [shape=(n, d)], n >= 2.

    Returns ``c[i] = VS(x) - VS(x without row i)``: positive when row ``i``
    adds diversity, negative when the set is more diverse without it (a
    near-duplicate of a crowded mode). The RBF bandwidth, when not given, is
    fixed from the full set so that every leave-one-out set uses one kernel.

    Each left-out set's spectrum comes from a batched symmetric eigensolver:
    ``(n-1) x (n-1)`` principal submatrices of ``K`` when ``n - 1 <= d`` (or
    for RBF), else the ``d x d`` downdates ``X^T X - x_i x_i^T`` for the
    cosine kernel. The cost is ``O(n min(n, d)^3)``: fine for the few hundred
    samples of a fine-tuning round, slow for many thousands.
    """
    q = _check_order(q)
    a = _prepare(x, kernel, bandwidth, 2)
    n, d = a.shape
    if kernel == "rbf":
        if bandwidth is None:
            bandwidth = median_pairwise_distance(a)
        full_k = _rbf_matrix(a, bandwidth)
    else:
        full_k = a @ a.T if n - 1 <= d else None
    full = vendi_from_eigenvalues(
        np.linalg.eigvalsh(full_k / n if full_k is not None else a.T @ a / n), q)

    out = np.empty(n)
    if full_k is not None:
        # Principal submatrix without row/column i, for a batch of i at once.
        size = n - 1
        step = max(1, _BATCH_ELEMENTS // (size * size))
        keep = np.arange(size)
        for start in range(0, n, step):
            drop = np.arange(start, min(n, start + step))
            idx = keep[None, :] + (keep[None, :] >= drop[:, None])     # rows kept for each dropped i
            sub = full_k[idx[:, :, None], idx[:, None, :]] / size
            out[drop] = vendi_from_eigenvalues(np.linalg.eigvalsh(sub), q)
    else:
        dual = a.T @ a
        step = max(1, _BATCH_ELEMENTS // (d * d))
        for start in range(0, n, step):
            rows = a[start:start + step]
            downdated = (dual[None] - rows[:, :, None] * rows[:, None, :]) / (n - 1)
            out[start:start + rows.shape[0]] = vendi_from_eigenvalues(np.linalg.eigvalsh(downdated), q)
    return full - out
