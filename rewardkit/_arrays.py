"""Input checks shared by every metric.

Each metric accepts numpy arrays, array-likes and torch tensors (CPU or CUDA)
and computes in float64 on the host. The checks here turn every kind of bad
input into an :class:`~rewardkit.errors.InputError` whose message names the
argument and the problem, so no metric can return a silent NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError


def _is_torch_tensor(x: Any) -> bool:
    # Checked by duck type so that metrics never import torch themselves.
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a numpy array (a tensor is detached and copied to the host)."""
    if _is_torch_tensor(x):
        x = x.detach()
        if x.is_complex():
            raise InputError(f"{name}: complex values are not supported (dtype {x.dtype})")
        return x.to("cpu").double().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists, objects numpy cannot stack
        raise InputError(f"{name}: cannot be read as an array ({exc})") from None


def as_matrix(x: Any, name: str, *, min_rows: int = 1, dim: int | None = None) -> np.ndarray:
    """Check and convert ``x`` to a C-contiguous float64 matrix.

    Parameters
    ----------
    x : array-like or torch.Tensor [shape=(n, d)]
    name : str
        How the argument is named in error messages.
    min_rows : int
        Fewest rows accepted (2 where a covariance is needed).
    dim : int, optional
        Required number of columns.

    Raises
    ------
    InputError
        Not 2-D, not real numeric, too few rows, wrong width, or NaN/Inf.
    """
    a = to_numpy(x, name)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{name}: expected real numbers, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise InputError(f"{name}: complex values are not supported (dtype {a.dtype})")
    if a.ndim != 2:
        raise InputError(f"{name}: expected a 2-D array of shape (n, d), got shape {a.shape}")
    n, d = a.shape
    if d == 0:
        raise InputError(f"{name}: has zero columns (shape {a.shape})")
    if n < min_rows:
        need = "a covariance needs at least 2" if min_rows == 2 else f"at least {min_rows} needed"
        raise InputError(f"{name}: has {n} row(s); {need}")
    if dim is not None and d != dim:
        raise InputError(f"{name}: has dimension {d}, expected {dim} to match the other input")
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, name)
    return a


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise :class:`InputError` if ``a`` holds NaN or Inf, saying where the first one is."""
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name}: contains {int(bad.sum())} NaN/Inf value(s), the first at index {first}")


def as_vector(x: Any, name: str, *, size: int | None = None) -> np.ndarray:
    """Check and convert ``x`` to a finite float64 vector."""
    a = to_numpy(x, name)
    if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{name}: expected real numbers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if size is not None and a.shape[0] != size:
        raise InputError(f"{name}: has length {a.shape[0]}, expected {size}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, name)
    return a


def unit_rows(a: np.ndarray, name: str) -> np.ndarray:
    """Scale each row to unit Euclidean norm; a zero row has no direction and is an error."""
    norms = np.linalg.norm(a, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise InputError(f"{name}: row {int(zero[0])} is all zeros, so its cosine similarity is undefined")
    return a / norms[:, None]
