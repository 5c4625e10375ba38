import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st

from rewardkit import InputError, vendi_contributions, vendi_score, vendi_score_from_kernel

ORDERS = [0.5, 1.0, 2.0, float("inf"), 3.7, 0.1]


def reference_vendi(k: np.ndarray, q: float) -> float:
    """Renyi-entropy Vendi score written out independently, from the full n x n kernel."""
    w = scipy.linalg.eigvalsh(k / k.shape[0])
    w = w[w > 1e-12]
    w = w / w.sum()
    if q == 1:
        return float(np.exp(-(w * np.log(w)).sum()))
    if np.isinf(q):
        return float(1 / w.max())
    return float(np.exp(np.log((w**q).sum()) / (1 - q)))


def cosine_kernel(x):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return u @ u.T


@pytest.mark.parametrize("q", ORDERS)
def test_identical_rows_score_one_and_orthonormal_rows_score_n(q, rng):
    row = rng.normal(size=(1, 7))
    assert vendi_score(np.repeat(row, 25, axis=0), q) == pytest.approx(1.0, rel=1e-9)
    basis, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert vendi_score(basis[:9], q) == pytest.approx(9.0, rel=1e-9)       # n < d: primal
    assert vendi_score(basis * 3.0, q) == pytest.approx(12.0, rel=1e-9)    # scale does not matter


@pytest.mark.parametrize("q", ORDERS)
@pytest.mark.parametrize("n, d", [(30, 8), (8, 30), (16, 16)])
def test_cosine_score_matches_independent_reference(q, n, d, rng):
    x = rng.normal(size=(n, d)) + rng.normal(size=d)
    expected = reference_vendi(cosine_kernel(x), q)
    assert vendi_score(x, q) == pytest.approx(expected, rel=1e-9)           # dual path when n > d
    assert vendi_score_from_kernel(cosine_kernel(x), q) == pytest.approx(expected, rel=1e-9)


def test_rbf_kernel_matches_explicit_matrix(rng):
    x = rng.normal(size=(20, 4))
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * 1.3**2))
    expected = reference_vendi(k, 2.0)
    assert vendi_score(x, 2.0, kernel="rbf", bandwidth=1.3) == pytest.approx(expected, rel=1e-9)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), d=st.integers(1, 20))
def test_score_between_one_and_n_and_nonincreasing_in_q(seed, n, d):
    x = np.random.default_rng(seed).normal(size=(n, d))
    scores = [vendi_score(x, q) for q in (0.25, 0.5, 1.0, 2.0, 5.0, float("inf"))]
    assert all(1 - 1e-9 <= s <= n + 1e-9 for s in scores)
    assert all(a >= b - 1e-9 * n for a, b in itertools.pairwise(scores))   # Renyi entropy falls with q


def test_tensors_are_accepted(rng):
    x = rng.normal(size=(30, 6))
    assert vendi_score(torch.from_numpy(x)) == pytest.approx(vendi_score(x), rel=1e-14)


@pytest.mark.parametrize("q", [1.0, 2.0, 0.5, float("inf")])
@pytest.mark.parametrize("n, d, kernel", [(9, 20, "cosine"), (25, 6, "cosine"), (12, 3, "rbf")])
def test_contributions_equal_brute_force_leave_one_out(q, n, d, kernel, rng):
    x = rng.normal(size=(n, d))
    bandwidth = None
    if kernel == "rbf":
        from rewardkit import median_pairwise_distance

        bandwidth = median_pairwise_distance(x)
    full = vendi_score(x, q, kernel=kernel, bandwidth=bandwidth)
    brute = np.array([full - vendi_score(np.delete(x, i, axis=0), q, kernel=kernel, bandwidth=bandwidth)
                      for i in range(n)])
    np.testing.assert_allclose(vendi_contributions(x, q, kernel=kernel), brute, rtol=1e-8, atol=1e-10)


def test_contributions_rank_duplicates_below_an_outlier(rng):
    cluster = np.repeat(rng.normal(size=(1, 16)), 10, axis=0) + rng.normal(scale=0.01, size=(10, 16))
    outlier = np.zeros((1, 16))
    outlier[0, np.argmin(np.abs(cluster[0]))] = 1.0
    c = vendi_contributions(np.vstack([cluster, outlier]))
    # ~orthogonal outlier beside 10 near-copies: VS goes from ~1 to exp(H(10/11, 1/11)) ~ 1.357
    assert c[-1] == pytest.approx(np.exp(-(10 / 11) * np.log(10 / 11) + np.log(11) / 11) - 1, rel=0.05)
    assert c[-1] > 10 * np.abs(c[:-1]).max()


@pytest.mark.parametrize("q", [0, -1, float("nan")])
def test_order_must_be_positive(q, rng):
    with pytest.raises(InputError, match="q: the order must be positive"):
        vendi_score(rng.normal(size=(5, 3)), q)


def test_bad_input(rng):
    x = rng.normal(size=(5, 3))
    x[2] = 0
    with pytest.raises(InputError, match="x: row 2 is all zeros"):
        vendi_score(x)
    with pytest.raises(InputError, match="kernel: expected 'cosine' or 'rbf'"):
        vendi_score(rng.normal(size=(5, 3)), kernel="poly")
    with pytest.raises(InputError, match="diagonal must be all ones"):
        vendi_score_from_kernel(2 * np.eye(3))
    with pytest.raises(InputError, match="not symmetric"):
        vendi_score_from_kernel(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(InputError, match="not positive semidefinite"):
        vendi_score_from_kernel(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(InputError, match="x: has 1 row"):
        vendi_contributions(rng.normal(size=(1, 3)))
