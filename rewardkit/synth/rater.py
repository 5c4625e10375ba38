"""A synthetic panel of listeners who rate degraded clips of the synthetic world from 1 to 5.

The model, in full
------------------
Latent quality of a clip with degradations ``(k_j, s_j)``::

    q = 5 - a - sum_j WEIGHTS[k_j] * s_j

with the clip's "appeal" deficit ``a = |N(0, appeal_sd)|`` (default 0.25; no
clean clip is perfect for everyone) drawn from the clip seed, and the
penalty linear in severity (f(s) = s) with :data:`WEIGHTS`:

========  ======
kind      weight
========  ======
noise     3.0
clipping  2.5
detune    2.0
jitter    2.0
lowpass   1.5
dropout   3.0
========  ======

Each of ``n_raters`` raters (default 5) reports an integer score
``clip(round(q + b_r + e), 1, 5)`` with a per-rater bias ``b_r ~ N(0,
bias_sd)`` (0.3; fixed per panel, i.e. by ``panel_seed``, so the same
raters rate every clip of a corpus) and noise ``e ~ N(0, sigma)`` (0.5; a
fresh draw per rating, from the clip seed). The rating is the mean score,
a float in [1, 5] in steps of 1/n_raters. Everything is deterministic from
the seeds; the expected rating falls monotonically with every severity.

These are made-up numbers for demos, tests and benchmarks; they are not
fitted to any listening test.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError
from .attributes import STREAM_RATE, check_seed
from .degrade import check_severity, parse_degradations

WEIGHTS = {"noise": 3.0, "clipping": 2.5, "detune": 2.0, "jitter": 2.0, "lowpass": 1.5, "dropout": 3.0}


def _as_list(degradations: Iterable[tuple[str, float]] | str | None) -> list[tuple[str, float]]:
    if degradations is None:
        return []
    if isinstance(degradations, str):
        return parse_degradations(degradations)
    return [(kind, check_severity(kind, s)) for kind, s in degradations]


def latent_quality(degradations: Iterable[tuple[str, float]] | str | None) -> float:
    """``5 - sum WEIGHTS[kind] * severity`` (the appeal term excluded); may fall below 1."""
    return 5.0 - sum(WEIGHTS[kind] * s for kind, s in _as_list(degradations))


def rater_scores(degradations: Iterable[tuple[str, float]] | str | None, seed: int, *, n_raters: int = 5,
                 sigma: float = 0.5, bias_sd: float = 0.3, appeal_sd: float = 0.25,
                 panel_seed: int = 0) -> np.ndarray:
    """Each rater's integer score (1-5) for one clip; see the module docstring for the model.

    Parameters
    ----------
    degradations : iterable of (kind, severity), str or None
        What was applied, as pairs or as metadata text ``"noise:0.42;clipping:0.10"``.
    seed : int
        The clip's seed (appeal and rating noise).
    n_raters, sigma, bias_sd, appeal_sd : int, float
        Panel size, per-rating noise, spread of rater biases, spread of the appeal deficit.
    panel_seed : int
        Fixes the raters' biases; keep it constant across a corpus.

    Returns
    -------
    numpy.ndarray
        ``n_raters`` integer scores as float64.
    """
    if isinstance(n_raters, bool) or not isinstance(n_raters, (int, np.integer)) or n_raters < 1:
        raise InputError(f"n_raters must be a positive integer, got {n_raters!r}")
    for name, value in (("sigma", sigma), ("bias_sd", bias_sd), ("appeal_sd", appeal_sd)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a finite non-negative number, got {value!r}")
    rng = np.random.default_rng([check_seed(seed), STREAM_RATE])
    bias = np.random.default_rng([check_seed(panel_seed, "panel_seed"), 99]).normal(0.0, bias_sd, n_raters)
    q = latent_quality(degradations) - abs(rng.normal(0.0, appeal_sd))
    scores = np.round(q + bias + rng.normal(0.0, sigma, n_raters))
    return np.clip(scores, 1.0, 5.0)


def rate(degradations: Iterable[tuple[str, float]] | str | None, seed: int, **panel: float) -> float:
    """The panel's mean rating (1-5) of a clip; ``panel`` takes :func:`rater_scores`' keyword options."""
    return float(np.mean(rater_scores(degradations, seed, **panel)))
