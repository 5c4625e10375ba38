import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rewardkit as rk
from rewardkit import GaussianStats, InputError, StatsFileError


def test_from_samples_matches_numpy(rng):
    x = rng.normal(size=(300, 7)) * 3 + 5
    s = GaussianStats.from_samples(x)
    assert s.count == 300 and s.dim == 7
    np.testing.assert_allclose(s.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), rtol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
       offset=st.sampled_from([0.0, 1e3, 1e6]))
def test_merged_stats_equal_stats_of_concatenation(seed, sizes, offset):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n, 5)) + offset for n in sizes]
    whole = np.concatenate(parts)
    merged = GaussianStats(5)
    for p in parts:
        merged = merged.merge(GaussianStats.from_samples(p))
    streamed = GaussianStats(5)
    for p in parts:
        streamed.update(p)
    for s in (merged, streamed):
        assert s.count == whole.shape[0]
        np.testing.assert_allclose(s.mean, whole.mean(axis=0), rtol=1e-12, atol=1e-12)
        centred = whole - whole.mean(axis=0)
        np.testing.assert_allclose(s.scatter, centred.T @ centred, rtol=1e-8, atol=1e-7)


def test_merge_does_not_modify_its_inputs(rng):
    a = GaussianStats.from_samples(rng.normal(size=(10, 3)))
    b = GaussianStats.from_samples(rng.normal(size=(5, 3)))
    before = (a.count, a.mean.copy(), a.scatter.copy())
    a.merge(b)
    assert a.count == before[0]
    np.testing.assert_array_equal(a.mean, before[1])
    np.testing.assert_array_equal(a.scatter, before[2])


def test_merge_refuses_other_dimension_or_encoder(rng):
    a = GaussianStats.from_samples(rng.normal(size=(10, 3)), encoder="clap:abc")
    with pytest.raises(InputError, match="dimension 4"):
        a.merge(GaussianStats.from_samples(rng.normal(size=(10, 4)), encoder="clap:abc"))
    with pytest.raises(InputError, match="encoder 'mel:x'"):
        a.merge(GaussianStats.from_samples(rng.normal(size=(10, 3)), encoder="mel:x"))


def test_covariance_needs_two_samples(rng):
    s = GaussianStats.from_samples(rng.normal(size=(1, 3)))
    with pytest.raises(InputError, match="at least 2"):
        _ = s.cov


def test_update_checks_its_input(rng):
    s = GaussianStats(3)
    with pytest.raises(InputError, match="dimension 4"):
        s.update(rng.normal(size=(5, 4)))
    bad = rng.normal(size=(5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match=r"x: contains 1 NaN/Inf value\(s\), the first at index \(2, 1\)"):
        s.update(bad)
    assert s.count == 0  # nothing half-added


def test_from_moments_round_trips(rng):
    x = rng.normal(size=(50, 4))
    s = GaussianStats.from_samples(x)
    t = GaussianStats.from_moments(s.mean, s.cov, s.count)
    np.testing.assert_allclose(t.scatter, s.scatter, rtol=1e-12)
    with pytest.raises(InputError, match="not symmetric"):
        GaussianStats.from_moments(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), 10)


def test_save_load_round_trip(tmp_path, rng):
    s = GaussianStats.from_samples(rng.normal(size=(40, 6)), encoder="clap:1234",
                                   info={"source": "exemplars/", "files": 40})
    path = tmp_path / "ref.npz"
    s.save(path)
    t = GaussianStats.load(path)
    assert (t.count, t.dim, t.encoder, t.info) == (40, 6, "clap:1234", {"source": "exemplars/", "files": 40})
    np.testing.assert_array_equal(t.mean, s.mean)
    np.testing.assert_array_equal(t.scatter, s.scatter)
    assert os.listdir(tmp_path) == ["ref.npz"]  # no temporary file left behind
    # and it is a plain npz that loads without pickle
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"count", "mean", "scatter", "meta"}


def test_failed_save_keeps_the_old_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "ref.npz"
    GaussianStats.from_samples(rng.normal(size=(10, 2))).save(path)
    old = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError, match="disk full"):
        GaussianStats.from_samples(rng.normal(size=(10, 2))).save(path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["ref.npz"]


@pytest.mark.parametrize("content, message", [
    (None, "no such stats file"),
    (b"", "not a readable .npz"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a readable .npz"),
])
def test_load_rejects_missing_and_garbage_files(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StatsFileError, match=message) as info:
        GaussianStats.load(path)
    assert str(path) in str(info.value)


def test_load_rejects_truncated_and_foreign_npz(tmp_path, rng):
    good = tmp_path / "good.npz"
    GaussianStats.from_samples(rng.normal(size=(10, 3))).save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(StatsFileError, match=r"truncated\.npz"):
        GaussianStats.load(truncated)
    foreign = tmp_path / "peer.npz"
    np.savez(foreign, mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(StatsFileError, match="missing count, mean, meta, scatter"):
        GaussianStats.load(foreign)


def test_load_rejects_nan_content(tmp_path, rng):
    s = GaussianStats.from_samples(rng.normal(size=(10, 3)))
    s.mean[0] = np.nan
    path = tmp_path / "nan.npz"
    s.save(path)
    with pytest.raises(StatsFileError, match="NaN"):
        GaussianStats.load(path)


def test_info_must_be_json(rng):
    with pytest.raises(InputError, match="info: must be JSON-serialisable"):
        GaussianStats(3, info={"when": object()})


def test_stats_are_exported_from_package():
    assert rk.GaussianStats is GaussianStats


def test_saved_files_get_ordinary_permissions(tmp_path, rng):
    GaussianStats.from_samples(rng.normal(size=(5, 2))).save(tmp_path / "ref.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "ref.npz").stat().st_mode & 0o777 == 0o666 & ~mask
