import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import rewardkit.metrics.kernel as kernel_module
from rewardkit import InputError, kernel_distance, median_pairwise_distance


def brute_force_mmd(x, y, k):
    """The unbiased estimator written out pair by pair."""
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def test_rbf_matches_brute_force_with_reference_bandwidth(rng):
    x, y = rng.normal(size=(9, 4)) + 0.5, rng.normal(size=(7, 4)) * 2
    distances = [np.linalg.norm(y[i] - y[j]) for i, j in itertools.combinations(range(7), 2)]
    sigma = float(np.median(distances))
    expected = brute_force_mmd(x, y, lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2)))
    assert kernel_distance(x, y) == pytest.approx(expected, rel=1e-12)
    assert median_pairwise_distance(y) == pytest.approx(sigma, rel=1e-14)


def test_bandwidth_comes_from_the_reference_not_the_candidates(rng):
    x, y = rng.normal(size=(50, 4)) * 5, rng.normal(size=(60, 4))
    by_ref = kernel_distance(x, y, bandwidth=median_pairwise_distance(y))
    by_candidates = kernel_distance(x, y, bandwidth=median_pairwise_distance(x))
    assert kernel_distance(x, y) == pytest.approx(by_ref, rel=1e-14)
    assert abs(by_ref - by_candidates) > 1e-3


def test_polynomial_kernel_matches_brute_force(rng):
    x, y = rng.normal(size=(8, 5)), rng.normal(size=(6, 5)) + 1
    expected = brute_force_mmd(x, y, lambda a, b: (a @ b / 5 + 1) ** 3)
    assert kernel_distance(x, y, kernel="poly") == pytest.approx(expected, rel=1e-12)
    expected2 = brute_force_mmd(x, y, lambda a, b: (0.3 * (a @ b) + 2) ** 2)
    value = kernel_distance(x, y, kernel="poly", degree=2, gamma=0.3, coef0=2)
    assert value == pytest.approx(expected2, rel=1e-12)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), d=st.integers(1, 16))
def test_set_with_itself_is_near_zero(seed, n, d):
    x = np.random.default_rng(seed).normal(size=(n, d))
    if median_pairwise_distance(x) == 0:
        return
    # Only the k(x_i, x_i) = 1 cross terms differ from the within-set terms: |KAD| <= 2 / n.
    assert abs(kernel_distance(x, x)) <= 2.0 / n + 1e-12


def test_unbiased_in_expectation_where_the_plug_in_estimate_is_not():
    rng = np.random.default_rng(0)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
        unbiased.append(kernel_distance(x, y, bandwidth=2.0))
        k = lambda p, q: np.exp(-((p[:, None] - q[None]) ** 2).sum(-1) / 8.0)  # noqa: E731
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    unbiased, biased = np.array(unbiased), np.array(biased)
    sem = unbiased.std(ddof=1) / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 4 * sem                    # consistent with E = 0
    assert biased.mean() > 10 * biased.std(ddof=1) / np.sqrt(len(biased))  # the V-statistic is biased up


def test_distinct_distributions_score_higher(rng):
    y = rng.normal(size=(200, 8))
    same = kernel_distance(rng.normal(size=(200, 8)), y)
    shifted = kernel_distance(rng.normal(size=(200, 8)) + 1.0, y)
    assert shifted > 0.05 > abs(same)


def test_blocking_and_tensors_do_not_change_the_value(rng, monkeypatch):
    x, y = rng.normal(size=(37, 6)), rng.normal(size=(23, 6)) + 0.2
    whole = kernel_distance(x, y)
    assert kernel_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(whole, rel=1e-14)
    monkeypatch.setattr(kernel_module, "_BLOCK_ROWS", 5)
    assert kernel_distance(x, y) == pytest.approx(whole, rel=1e-12)
    assert kernel_distance(x, y, scale=100) == pytest.approx(100 * whole, rel=1e-12)


def test_bad_input(rng):
    y = rng.normal(size=(10, 3))
    with pytest.raises(InputError, match=r"bandwidth: the reference set's median pairwise distance is 0\.0"):
        kernel_distance(y, np.ones((10, 3)))
    with pytest.raises(InputError, match=r"kernel: expected 'rbf' or 'poly'"):
        kernel_distance(y, y, kernel="laplace")
    with pytest.raises(InputError, match="x: has 1 row"):
        kernel_distance(y[:1], y)
    with pytest.raises(InputError, match="x: has dimension 2, expected 3"):
        kernel_distance(y[:, :2], y)
    with pytest.raises(InputError, match=r"bandwidth: bandwidth is -1\.0"):
        kernel_distance(y, y, bandwidth=-1.0)
