import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import random_spd
from hypothesis import given
from hypothesis import strategies as st

import rewardkit.metrics.frechet as frechet_module
from rewardkit import GaussianStats, InputError, frechet_distance, frechet_distance_inf, per_song_frechet


def gaussian(mean, cov, count=1000, encoder=None):
    return GaussianStats.from_moments(np.asarray(mean, float), np.asarray(cov, float), count, encoder=encoder)


def scipy_reference(a: GaussianStats, b: GaussianStats) -> float:
    """The textbook formula with scipy's general matrix square root (well-conditioned inputs only)."""
    root = scipy.linalg.sqrtm(a.cov @ b.cov)
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * np.trace(root).real)


def dense_reference(frames: np.ndarray, ref: GaussianStats) -> float:
    """Dense d x d form with an independent PSD square root of the reference covariance."""
    w, v = scipy.linalg.eigh(ref.cov)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cov = np.cov(frames, rowvar=False)
    ev = scipy.linalg.eigvalsh(root @ cov @ root)
    ev = np.where(ev > ev.max() * 1e-12, ev, 0.0)
    diff = frames.mean(axis=0) - ref.mean
    return float(diff @ diff + np.trace(cov) + np.trace(ref.cov) - 2 * np.sqrt(ev).sum())


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("d", [1, 8, 128])
def test_mean_shift_closed_form(d, rng):
    mu = rng.normal(size=d)
    fd = frechet_distance(gaussian(np.zeros(d), np.eye(d)), gaussian(mu, np.eye(d)))
    assert fd == pytest.approx(mu @ mu, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("a, b", [(1.0, 4.0), (0.25, 9.0), (2.0, 2.0), (1e-4, 1.0)])
def test_isotropic_scale_closed_form(a, b):
    d = 16
    fd = frechet_distance(gaussian(np.zeros(d), a * np.eye(d)), gaussian(np.zeros(d), b * np.eye(d)))
    assert fd == pytest.approx(d * (np.sqrt(a) - np.sqrt(b)) ** 2, rel=1e-10, abs=1e-12)


# ---------------------------------------------------------------- independent reference
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 32), condition=st.sampled_from([1.5, 10.0, 100.0]))
def test_agrees_with_scipy_sqrtm_on_well_conditioned_cases(seed, d, condition):
    rng = np.random.default_rng(seed)
    a = gaussian(rng.normal(size=d), random_spd(rng, d, condition=condition))
    b = gaussian(rng.normal(size=d), random_spd(rng, d, condition=condition))
    assert frechet_distance(a, b) == pytest.approx(scipy_reference(a, b), rel=1e-6)


def test_raw_embeddings_and_stats_give_the_same_value(rng):
    x, y = rng.normal(size=(400, 12)), rng.normal(size=(300, 12)) * 1.5 + 0.2
    expected = frechet_distance(GaussianStats.from_samples(x), GaussianStats.from_samples(y))
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(
        expected, rel=1e-5)


# ---------------------------------------------------------------- properties
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 24), n_a=st.integers(2, 60), n_b=st.integers(2, 60))
def test_nonnegative_symmetric_and_float(seed, d, n_a, n_b):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_a, d)) * rng.uniform(0.1, 3)
    y = rng.normal(size=(n_b, d)) + rng.normal(size=d)
    ab, ba = frechet_distance(x, y), frechet_distance(y, x)
    assert type(ab) is float and np.isfinite(ab) and ab >= 0
    scale = np.trace(np.cov(x, rowvar=False).reshape(d, d)) + np.trace(np.cov(y, rowvar=False).reshape(d, d))
    assert ab == pytest.approx(ba, rel=1e-7, abs=1e-9 * scale)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 64), n=st.integers(2, 80))
def test_identical_inputs_give_zero_even_when_rank_deficient(seed, d, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.01, 100)
    s = GaussianStats.from_samples(x)
    fd = frechet_distance(s, s.copy())
    assert 0.0 <= fd <= 1e-9 * max(np.trace(s.cov), 1e-300)


def test_rank_deficient_sets_match_the_low_rank_form(rng):
    # 6 samples in 40 dimensions: both covariances have rank 5.
    x, y = rng.normal(size=(6, 40)), rng.normal(size=(500, 40)) + 0.3
    ref = GaussianStats.from_samples(y)
    fd = frechet_distance(x, ref)
    assert np.isfinite(fd) and fd > 0
    assert fd == pytest.approx(per_song_frechet([x], ref)[0], rel=1e-9)
    singular = GaussianStats.from_samples(rng.normal(size=(6, 40)))
    assert np.isfinite(frechet_distance(singular, GaussianStats.from_samples(rng.normal(size=(6, 40)))))


def test_reference_factor_is_cached_and_exact(rng):
    ref = GaussianStats.from_samples(rng.normal(size=(100, 5)))
    frechet_distance(rng.normal(size=(50, 5)), ref)
    cached = ref.cov_factor()
    assert ref.cov_factor() is cached
    np.testing.assert_allclose(cached @ cached.T, ref.cov, atol=1e-12)
    ref.update(rng.normal(size=(10, 5)))       # new data invalidates the cache
    assert ref.cov_factor() is not cached
    singular = GaussianStats.from_samples(rng.normal(size=(3, 5)))  # rank 2: no Cholesky factor
    f = singular.cov_factor()
    np.testing.assert_allclose(f @ f.T, singular.cov, atol=1e-12)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("x, message", [
    (np.full((5, 3), np.nan), "a: contains 15 NaN/Inf"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), r"a: contains 1 NaN/Inf value\(s\), the first at index \(0, 1\)"),
    (np.ones((1, 3)), "a: has 1 row"),
    (np.ones(3), "a: expected a 2-D array"),
    (np.ones((4, 3, 2)), "a: expected a 2-D array"),
    (np.ones((4, 3)) * 1j, "a: complex values"),
    (np.array([["a", "b"], ["c", "d"]]), "a: expected real numbers"),
])
def test_bad_embeddings_are_named(x, message, rng):
    with pytest.raises(InputError, match=message):
        frechet_distance(x, rng.normal(size=(10, 3)))


def test_mismatched_dims_and_encoders_are_refused(rng):
    with pytest.raises(ValueError, match="a: has dimension 3 but b has 4"):
        frechet_distance(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))
    a = GaussianStats.from_samples(rng.normal(size=(10, 3)), encoder="clap:aaa")
    b = GaussianStats.from_samples(rng.normal(size=(10, 3)), encoder="mel:bbb")
    with pytest.raises(InputError, match="different encoders"):
        frechet_distance(a, b)


# ---------------------------------------------------------------- per-song
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 12),
       lengths=st.lists(st.integers(2, 20), min_size=1, max_size=12))
def test_per_song_fast_path_equals_dense_formula(seed, d, lengths):
    rng = np.random.default_rng(seed)
    ref = GaussianStats.from_samples(rng.normal(size=(200, d)) @ rng.normal(size=(d, d)))
    songs = [rng.normal(size=(n, d)) * rng.uniform(0.2, 2) + rng.normal(size=d) for n in lengths]
    fast = per_song_frechet(songs, ref)
    dense = np.array([dense_reference(s, ref) for s in songs])
    np.testing.assert_allclose(fast, dense, rtol=1e-6, atol=1e-9 * np.trace(ref.cov))
    assert fast.dtype == np.float64 and fast.shape == (len(songs),) and (fast >= 0).all()


def test_per_song_matches_frechet_distance_at_realistic_size(rng):
    d = 128
    ref = GaussianStats.from_samples(rng.normal(size=(2000, d)))
    songs = [rng.normal(size=(n, d)) + 0.1 for n in (32, 32, 7, 100, 129, 300)]
    expected = [frechet_distance(s, ref) for s in songs]
    np.testing.assert_allclose(per_song_frechet(songs, ref), expected, rtol=1e-9)


def test_per_song_batches_and_buckets_do_not_change_results(rng, monkeypatch):
    ref = GaussianStats.from_samples(rng.normal(size=(100, 6)))
    songs = [rng.normal(size=(n, 6)) for n in rng.integers(2, 12, size=30)]
    whole = per_song_frechet(songs, ref)
    monkeypatch.setattr(frechet_module, "_BATCH_ELEMENTS", 50)   # one song per batch
    np.testing.assert_allclose(per_song_frechet(songs, ref), whole, rtol=1e-12)


def test_per_song_accepts_a_3d_array_and_tensors(rng):
    ref = GaussianStats.from_samples(rng.normal(size=(100, 5)))
    block = rng.normal(size=(4, 8, 5))
    expected = per_song_frechet(list(block), ref)
    np.testing.assert_allclose(per_song_frechet(block, ref), expected)
    np.testing.assert_allclose(per_song_frechet([torch.from_numpy(s) for s in block], ref), expected)


def test_single_frame_songs(rng):
    ref = GaussianStats.from_samples(rng.normal(size=(100, 5)))
    songs = [rng.normal(size=(4, 5)), rng.normal(size=(1, 5))]
    with pytest.raises(InputError, match=r"songs\[1\]: has 1 frame"):
        per_song_frechet(songs, ref)
    out = per_song_frechet(songs, ref, single_frame="point")
    diff = songs[1][0] - ref.mean
    assert out[1] == pytest.approx(diff @ diff + np.trace(ref.cov), rel=1e-12)
    with pytest.raises(InputError, match=r"songs\[0\]: has 0 row"):
        per_song_frechet([np.zeros((0, 5))], ref, single_frame="point")


def test_per_song_bad_input_names_the_song(rng):
    ref = GaussianStats.from_samples(rng.normal(size=(100, 5)))
    bad = rng.normal(size=(4, 5))
    bad[3, 3] = np.inf
    with pytest.raises(InputError, match=r"songs\[2\]: contains 1 NaN/Inf"):
        per_song_frechet([bad[:2] * 0, bad[:3], bad], ref)
    with pytest.raises(InputError, match=r"songs\[0\]: has dimension 4, expected 5"):
        per_song_frechet([rng.normal(size=(4, 4))], ref)
    with pytest.raises(InputError, match="songs: expected a list"):
        per_song_frechet(rng.normal(size=(4, 5)), ref)


# ---------------------------------------------------------------- FAD-inf
def test_fad_inf_is_seeded_and_removes_the_finite_sample_bias(rng):
    d = 32
    ref = gaussian(np.zeros(d), np.eye(d), count=10**6)
    x = rng.normal(size=(4000, d))                 # same distribution: true FD is 0
    result = frechet_distance_inf(x, ref, min_n=500, steps=10, seed=7)
    again = frechet_distance_inf(x, ref, min_n=500, steps=10, seed=7)
    assert result == again
    assert frechet_distance_inf(x, ref, min_n=500, steps=10, seed=8).points != result.points
    largest_n_fd = result.points[-1][1]
    assert abs(result.value) < 0.25 * largest_n_fd   # the extrapolation removes most of the bias
    assert result.slope > 0 and result.r2 > 0.9
    assert [n for n, _ in result.points] == sorted({n for n, _ in result.points})


def test_fad_inf_bad_ranges(rng):
    x = rng.normal(size=(100, 3))
    with pytest.raises(InputError, match="min_n/max_n"):
        frechet_distance_inf(x, x)          # default min_n=500 > 100 rows
    with pytest.raises(InputError, match="steps"):
        frechet_distance_inf(x, x, min_n=10, steps=1)
    with pytest.raises(InputError, match="x: has dimension 3 but ref has 4"):
        frechet_distance_inf(x, rng.normal(size=(10, 4)), min_n=10)
