import numpy as np
import pytest
import torch

from rewardkit import InputError, cosine_scores, similarity_to_set


def test_paired_cosine_matches_definition_and_ignores_scale(rng):
    a, b = rng.normal(size=(10, 6)), rng.normal(size=(10, 6))
    expected = [x @ y / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(cosine_scores(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(cosine_scores(3 * a, 0.5 * b), expected, rtol=1e-12)
    np.testing.assert_allclose(cosine_scores(a, a), 1.0, rtol=1e-12)
    np.testing.assert_allclose(cosine_scores(torch.from_numpy(a), b), expected, rtol=1e-12)


def test_similarity_to_set_matches_brute_force(rng):
    x, e = rng.normal(size=(7, 5)), rng.normal(size=(11, 5))
    sims = np.array([[p @ q / np.linalg.norm(p) / np.linalg.norm(q) for q in e] for p in x])
    out = similarity_to_set(x, e)
    np.testing.assert_allclose(out.mean, sims.mean(axis=1), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(out.max, sims.max(axis=1), rtol=1e-12)
    member = similarity_to_set(e[:3], e).max
    np.testing.assert_allclose(member, 1.0, rtol=1e-12)


def test_bad_input(rng):
    a = rng.normal(size=(4, 3))
    with pytest.raises(InputError, match="b: has 3 rows but a has 4"):
        cosine_scores(a, a[:3])
    with pytest.raises(InputError, match="b: has dimension 2, expected 3"):
        cosine_scores(a, a[:, :2])
    zero = a.copy()
    zero[1] = 0
    with pytest.raises(InputError, match="exemplars: row 1 is all zeros"):
        similarity_to_set(a, zero)
    nan = a.copy()
    nan[2, 0] = np.nan
    with pytest.raises(InputError, match=r"x: contains 1 NaN/Inf value\(s\), the first at index \(2, 0\)"):
        similarity_to_set(nan, a)
