"""Gaussian sufficient statistics of embeddings: streaming, mergeable, saved as ``.npz``.

The Frechet distance compares two Gaussians, so a reference set is fully
described by its sample count, mean and covariance. :class:`GaussianStats`
accumulates these in float64 from batches of any size and merges exactly
across files, processes or machines, so the embeddings themselves never need
to be stored together.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from ._arrays import as_matrix, as_vector
from ._fileio import atomic_write
from ._version import __version__
from .errors import InputError, StatsFileError

_FORMAT = "rewardkit.GaussianStats"
_FORMAT_VERSION = 1


class GaussianStats:
    """Count, mean and scatter matrix of a set of ``d``-dimensional vectors.

    The state is the sample count ``n``, the mean ``mu`` and the scatter
    ``M = sum_i (x_i - mu)(x_i - mu)^T``, all float64. Batches are combined
    with the pairwise update of Chan, Golub and LeVeque (1979), which stays
    accurate when the mean is large compared with the spread, unlike a raw
    sum of outer products.

    Parameters
    ----------
    dim : int
        Dimension ``d`` of the vectors.
    encoder : str, optional
        Fingerprint of the encoder that produced the vectors. Stats with
        different fingerprints refuse to merge, and rewardkit refuses to
        compare them.
    info : dict, optional
        Free-form JSON-serialisable metadata kept with the stats (source
        directory, number of files, ...).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(1000, 8))
    >>> s = GaussianStats(8).update(x[:400]).update(x[400:])
    >>> bool(np.allclose(s.cov, np.cov(x, rowvar=False)))
    True
    """

    def __init__(self, dim: int, *, encoder: str | None = None, info: dict[str, Any] | None = None):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise InputError(f"dim: expected a positive integer, got {dim!r}")
        self.count = 0
        self.mean = np.zeros(int(dim))
        self.scatter = np.zeros((int(dim), int(dim)))
        self.encoder = encoder
        self.info: dict[str, Any] = dict(info or {})
        _check_json(self.info, "info")
        self._factor: np.ndarray | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_samples(cls, x: Any, *, encoder: str | None = None,
                     info: dict[str, Any] | None = None) -> GaussianStats:
        """Stats of the rows of ``x`` [shape=(n, d)], n >= 1."""
        a = as_matrix(x, "x")
        return cls(a.shape[1], encoder=encoder, info=info)._add(a)

    @classmethod
    def from_moments(cls, mean: Any, cov: Any, count: int, *, encoder: str | None = None,
                     info: dict[str, Any] | None = None) -> GaussianStats:
        """Stats from a mean, an unbiased covariance (ddof=1) and a count, e.g. a peer's mu/sigma file."""
        mu = as_vector(mean, "mean")
        c = as_matrix(cov, "cov", dim=mu.shape[0])
        if c.shape[0] != c.shape[1]:
            raise InputError(f"cov: expected a square matrix, got shape {c.shape}")
        if not np.allclose(c, c.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(c).max()))):
            raise InputError("cov: is not symmetric")
        if not isinstance(count, (int, np.integer)) or count < 2:
            raise InputError(f"count: a covariance needs at least 2 samples, got {count!r}")
        s = cls(mu.shape[0], encoder=encoder, info=info)
        s.count, s.mean, s.scatter = int(count), mu.copy(), (c + c.T) / 2 * (int(count) - 1)
        return s

    def update(self, x: Any) -> GaussianStats:
        """Add the rows of ``x`` [shape=(n, d)] in place and return ``self``."""
        return self._add(as_matrix(x, "x", dim=self.dim))

    def _add(self, a: np.ndarray) -> GaussianStats:
        mean_b = a.mean(axis=0)
        centred = a - mean_b
        self._combine(a.shape[0], mean_b, centred.T @ centred)
        return self

    def _combine(self, n_b: int, mean_b: np.ndarray, scatter_b: np.ndarray) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.scatter = self.scatter + scatter_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n
        self._factor = None

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Stats of the union of both sets, as a new object (``self`` keeps its ``info``)."""
        if not isinstance(other, GaussianStats):
            raise InputError(f"other: expected GaussianStats, got {type(other).__name__}")
        if other.dim != self.dim:
            raise InputError(f"other: has dimension {other.dim}, expected {self.dim}")
        if other.encoder != self.encoder:
            raise InputError(
                f"other: was built with encoder {other.encoder!r}, these stats with {self.encoder!r}")
        out = self.copy()
        if other.count:
            out._combine(other.count, other.mean, other.scatter)
        return out

    def copy(self) -> GaussianStats:
        out = GaussianStats(self.dim, encoder=self.encoder, info=self.info)
        out.count, out.mean, out.scatter = self.count, self.mean.copy(), self.scatter.copy()
        return out

    # ------------------------------------------------------------------ reading
    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance ``M / (n - 1)`` [shape=(d, d)], as numpy.cov computes it."""
        if self.count < 2:
            raise InputError(f"stats: hold {self.count} sample(s); a covariance needs at least 2")
        return self.scatter / (self.count - 1)

    def cov_factor(self) -> np.ndarray:
        """A matrix ``F`` [shape=(d, d)] with ``F @ F.T == cov``, computed once and cached.

        The lower Cholesky factor when the covariance is positive definite
        (about 6x cheaper than an eigendecomposition at d = 2048), else the
        symmetric PSD square root. For any such ``F``, ``F.T @ S @ F`` is
        symmetric PSD with the eigenvalues of ``S @ cov``, which is all the
        Frechet distance needs; reference stats compared with many
        candidates pay for the factor once.
        """
        if self._factor is None:
            cov = self.cov
            try:
                self._factor = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:  # singular (e.g. fewer samples than dimensions)
                w, v = np.linalg.eigh(cov)
                self._factor = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        return self._factor

    def __repr__(self) -> str:
        return f"GaussianStats(dim={self.dim}, count={self.count}, encoder={self.encoder!r})"

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str], *, extra: dict[str, np.ndarray] | None = None) -> None:
        """Write the stats to ``path`` as an uncompressed ``.npz``, atomically.

        The file holds ``count``, ``mean``, ``scatter`` and a JSON ``meta``
        string (format, version, encoder, info), plus any ``extra`` named
        arrays (which :meth:`load` ignores); it loads without pickle.
        """
        extra = dict(extra or {})
        clash = {"count", "mean", "scatter", "meta"} & extra.keys()
        if clash:
            raise InputError(f"extra: names {sorted(clash)} are reserved")
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "rewardkit": __version__,
                "encoder": self.encoder, "info": self.info}
        with atomic_write(path) as f:
            np.savez(f, count=np.int64(self.count), mean=self.mean, scatter=self.scatter,
                     meta=np.array(json.dumps(meta, sort_keys=True)), **extra)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GaussianStats:
        """Read stats written by :meth:`save`; any other content raises :class:`StatsFileError`."""
        name = os.fspath(path)
        if not os.path.isfile(name):
            raise StatsFileError(f"{name}: no such stats file")
        try:
            with np.load(name, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise StatsFileError(f"{name}: not a readable .npz stats file ({exc})") from None
        missing = {"count", "mean", "scatter", "meta"} - arrays.keys()
        if missing:
            raise StatsFileError(f"{name}: not a rewardkit stats file (missing {', '.join(sorted(missing))})")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError:
            raise StatsFileError(f"{name}: its metadata is not valid JSON") from None
        if meta.get("format") != _FORMAT or meta.get("format_version") != _FORMAT_VERSION:
            raise StatsFileError(
                f"{name}: unsupported format {meta.get('format')!r} version {meta.get('format_version')!r}")
        mean, scatter, count = arrays["mean"], arrays["scatter"], arrays["count"]
        d = mean.shape[0] if mean.ndim == 1 else -1
        if d < 1 or scatter.shape != (d, d) or count.shape != () or int(count) < 0:
            raise StatsFileError(f"{name}: inconsistent shapes (mean {mean.shape}, scatter {scatter.shape})")
        if not (np.isfinite(mean).all() and np.isfinite(scatter).all()):
            raise StatsFileError(f"{name}: contains NaN or Inf")
        s = cls(d, encoder=meta.get("encoder"), info=meta.get("info") or {})
        s.count, s.mean, s.scatter = int(count), mean.astype(np.float64), scatter.astype(np.float64)
        return s


def _check_json(value: Any, name: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: must be JSON-serialisable ({exc})") from None
