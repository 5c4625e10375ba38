"""Cosine similarities: paired (a prompt's text embedding with its clip) and to an exemplar set."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._arrays import as_matrix, unit_rows
from ..errors import InputError

_BLOCK_ROWS = 4096


def cosine_scores(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of row ``i`` of ``a`` with row ``i`` of ``b``.

    Parameters
    ----------
    a, b : array-like or torch.Tensor [shape=(n, d)]
        Paired embeddings, e.g. clip audio embeddings and their prompts' text
        embeddings (the CLAP score).

    Returns
    -------
    np.ndarray [shape=(n,)], float64, values in [-1, 1].
    """
    x = as_matrix(a, "a")
    y = as_matrix(b, "b", dim=x.shape[1])
    if y.shape[0] != x.shape[0]:
        raise InputError(f"b: has {y.shape[0]} rows but a has {x.shape[0]}; rows are paired one to one")
    return np.clip(np.einsum("ij,ij->i", unit_rows(x, "a"), unit_rows(y, "b")), -1.0, 1.0)


class SetSimilarity(NamedTuple):
    """Per-row similarity of a set to an exemplar set."""

    mean: np.ndarray
    """Mean cosine similarity to the exemplars [shape=(n,)]."""
    max: np.ndarray
    """Cosine similarity to the nearest exemplar [shape=(n,)]."""


def similarity_to_set(x: Any, exemplars: Any) -> SetSimilarity:
    """Mean and max cosine similarity of each row of ``x`` to the rows of ``exemplars``.

    Parameters
    ----------
    x : array-like or torch.Tensor [shape=(n, d)]
    exemplars : array-like or torch.Tensor [shape=(m, d)]
        Audio embeddings of an exemplar set, or text embeddings of captions
        from a cross-modal encoder.

    Notes
    -----
    The mean is ``x^_i . mean_j(e^_j)`` (linearity), so it costs ``O((n + m) d)``;
    the max is taken over ``n x m`` similarities in row blocks.
    """
    e = unit_rows(as_matrix(exemplars, "exemplars"), "exemplars")
    u = unit_rows(as_matrix(x, "x", dim=e.shape[1]), "x")
    mean = u @ e.mean(axis=0)
    best = np.concatenate([(u[s:s + _BLOCK_ROWS] @ e.T).max(axis=1)
                           for s in range(0, u.shape[0], _BLOCK_ROWS)])
    return SetSimilarity(np.clip(mean, -1.0, 1.0), np.clip(best, -1.0, 1.0))
