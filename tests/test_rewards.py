"""rewardkit.rewards: spec strings, the three reward classes, and agreement with the metric core."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import soundfile as sf
from audio_files import tone, write_good_set

import rewardkit as rk
from rewardkit import encoders
from rewardkit.embedding import embed_arrays, embed_directory
from rewardkit.errors import InputError
from rewardkit.reference import build_reference
from rewardkit.rewards import (
    DISTRIBUTION,
    INSTANCE,
    INSTANCE_TO_DISTRIBUTION,
    Batch,
    EmbeddingMemo,
    WeightedSum,
    make_reward,
    make_rewards,
)


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("exemplars")
    write_good_set(root, 6, base=200.0, seed=0)
    return root


@pytest.fixture(scope="module")
def batch():
    audio = [tone(180.0 * (1 + 0.3 * i), 1.5 + 0.25 * i, 22050, seed=40 + i) for i in range(6)]
    return Batch(audio, 22050, [f"a tone number {i}" for i in range(6)])


@pytest.fixture(scope="module")
def expected(ref_dir, batch):
    """What the metric core says, computed here without the rewards layer: the batch's mel frames and the reference."""
    mel = encoders.get("mel", device="cpu")
    frames = embed_arrays(batch.audio, batch.sample_rate, mel)
    ref = embed_directory(ref_dir, mel)
    return {"frames": frames, "pooled": np.stack([f.mean(axis=0, dtype=np.float64) for f in frames]),
            "ref_pooled": ref.pooled(), "stats": rk.GaussianStats.from_samples(ref.frames())}


def mel_reward(name, ref_dir, cache, **extra):
    query = "&".join(f"{k}={v}" for k, v in {"encoder": "mel", **extra}.items())
    return make_reward(f"rewardkit:{name}?{query}", {"ref": str(ref_dir)}, cache=cache)


def test_embed_arrays_matches_embedding_the_same_clip_from_a_file(tmp_path, batch):
    mel = encoders.get("mel", device="cpu")
    for i, clip in enumerate(batch.audio[:3]):
        sf.write(tmp_path / f"c{i}.wav", clip, batch.sample_rate, subtype="FLOAT")
    from_files = embed_directory(tmp_path, mel)
    from_arrays = embed_arrays(batch.audio[:3], batch.sample_rate, mel)
    for f, a in zip(from_files.files, from_arrays, strict=True):
        np.testing.assert_allclose(a, f.frames, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match=r"audio\[1\]: contains NaN"):
        embed_arrays([batch.audio[0], np.full(100, np.nan, np.float32)], 16000, mel)


def test_distribution_rewards_are_negated_metrics_with_leave_one_out_contributions(ref_dir, batch, expected,
                                                                                  tmp_path):
    frames, stats, pooled = expected["frames"], expected["stats"], expected["pooled"]

    fad = mel_reward("fad", ref_dir, rk.EmbeddingCache(tmp_path))
    assert fad.kind == DISTRIBUTION
    scored = fad.score(batch)
    every = np.concatenate(frames).astype(np.float64)
    assert scored.set_value() == pytest.approx(-rk.frechet_distance(every, stats), rel=1e-9)
    without_2 = np.concatenate([f for i, f in enumerate(frames) if i != 2]).astype(np.float64)
    assert scored.values[2] == pytest.approx(scored.set_value() + rk.frechet_distance(without_2, stats), rel=1e-9)
    # A set value of a sub-set (with repeats, as the bootstrap draws them) is the metric of those clips.
    sub = np.concatenate([frames[0], frames[0], frames[4]]).astype(np.float64)
    assert scored.set_value([0, 0, 4]) == pytest.approx(-rk.frechet_distance(sub, stats), rel=1e-9)

    vendi = make_reward("rewardkit:vendi?encoder=mel&q=2")
    s = vendi.score(batch)
    np.testing.assert_allclose(s.values, rk.vendi_contributions(pooled, q=2), rtol=1e-9)
    assert s.set_value() == pytest.approx(rk.vendi_score(pooled, q=2), rel=1e-9)

    kad = mel_reward("kad", ref_dir, rk.EmbeddingCache(tmp_path))
    assert kad.score(batch).set_value() == pytest.approx(-rk.kernel_distance(pooled, expected["ref_pooled"]),
                                                            rel=1e-9)


def test_per_clip_rewards_and_their_set_value_is_the_mean(ref_dir, batch, expected, tmp_path):
    frames, stats, pooled = expected["frames"], expected["stats"], expected["pooled"]
    per_song = mel_reward("per_song_fad", ref_dir, rk.EmbeddingCache(tmp_path))
    assert per_song.kind == INSTANCE_TO_DISTRIBUTION
    s = per_song.score(batch)
    np.testing.assert_allclose(s.values, -rk.per_song_frechet(frames, stats, single_frame="point"), rtol=1e-9)
    assert s.set_value([1, 3]) == pytest.approx(np.mean(s.values[[1, 3]]))
    sim = mel_reward("similarity", ref_dir, rk.EmbeddingCache(tmp_path), stat="max")
    np.testing.assert_allclose(sim.score(batch).values, rk.similarity_to_set(pooled, expected["ref_pooled"]).max,
                               rtol=1e-9)


def test_a_weighted_sum_adds_values_and_set_values_and_shares_embeddings(ref_dir, batch, tmp_path):
    cache = rk.EmbeddingCache(tmp_path)
    total = make_reward("0.25*rewardkit:fad?encoder=mel + 2*rewardkit:per_song_fad?encoder=mel",
                        {"ref": str(ref_dir)}, cache=cache)
    assert isinstance(total, WeightedSum) and total.kind == DISTRIBUTION
    assert total.name == "0.25*fad+2*per_song_fad"
    memo = EmbeddingMemo()
    s = total.score(batch, memo)
    assert len(memo.frames) == 1                                   # one encoder, embedded once
    a = mel_reward("fad", ref_dir, cache).score(batch)
    b = mel_reward("per_song_fad", ref_dir, cache).score(batch)
    np.testing.assert_allclose(s.values, 0.25 * a.values + 2 * b.values, rtol=1e-12)
    assert s.set_value([0, 2, 5]) == pytest.approx(0.25 * a.set_value([0, 2, 5]) + 2 * b.set_value([0, 2, 5]))


def test_user_rewards_by_module_and_callable(tmp_path, monkeypatch, batch):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent("""
        import numpy as np
        from rewardkit.rewards import Reward, Scored

        def loudness(audio, sample_rate, prompts):
            return [float(np.sqrt(np.mean(np.square(a)))) for a in audio]

        class Length(Reward):
            name = "length"
            def __init__(self, scale=1.0):
                self.scale = scale
            def score(self, batch, memo=None):
                return Scored(self.name, self.kind, np.array([self.scale * len(a) for a in batch.audio], float))

        def broken(audio, sample_rate, prompts):
            return [float("nan")] * len(audio)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    loud = make_reward("my_rewards:loudness")
    assert loud.kind == INSTANCE
    expected = [np.sqrt(np.mean(np.square(a.astype(np.float64)))) for a in batch.audio]
    np.testing.assert_allclose(loud.score(batch).values, expected, rtol=1e-6)
    length = make_reward("my_rewards:Length?scale=0.5")
    np.testing.assert_allclose(length.score(batch).values, [0.5 * len(a) for a in batch.audio])
    with pytest.raises(InputError, match="reward broken: non-finite value nan for clip 0"):
        make_reward("my_rewards:broken").score(batch)
    with pytest.raises(InputError, match="has no attribute 'nothing'"):
        make_reward("my_rewards:nothing")


@pytest.mark.parametrize("spec, defaults, message", [
    ("rewardkit:fadd", {}, "unknown rewardkit reward 'fadd'; known: aesthetics, clap_score"),
    ("rewardkit:fad?encoder=mel", {}, "fad needs a reference set"),
    ("rewardkit:vendi?bogus=1", {}, "unknown option 'bogus'"),
    ("rewardkit:clap_score?encoder=mel", {}, "encoder 'mel' has no text tower"),
    ("rewardkit:aesthetics?encoder=crepe", {}, "no head ships for encoder 'crepe'"),
    ("rewardkit:vendi?encoder=nope", {}, "encoder: unknown name 'nope'"),
    ("fad", {}, "expected 'rewardkit:NAME' or 'module:callable'"),
    ("no_such_module_xyz:f", {}, "cannot import module 'no_such_module_xyz'"),
    ("rewardkit:fad?encoder=mel", {"ref": "/does/not/exist"}, "no such reference"),
])
def test_bad_specs_fail_with_one_clear_line(spec, defaults, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("?", r"\?")):
        make_reward(spec, defaults)


def test_a_reference_from_another_encoder_is_refused(ref_dir, tmp_path):
    other = encoders.get("mel", device="cpu", n_mels=32)
    build_reference(ref_dir, other).save(tmp_path / "ref32.npz")
    with pytest.raises(InputError, match="reference built with encoder mel:"):
        make_reward("rewardkit:fad?encoder=mel", {"ref": str(tmp_path / "ref32.npz")})


def test_make_rewards_builds_a_list_and_shares_references(ref_dir, tmp_path):
    rewards = make_rewards("rewardkit:fad?encoder=mel, rewardkit:kad?encoder=mel,rewardkit:vendi?encoder=mel",
                           {"ref": str(ref_dir)}, cache=rk.EmbeddingCache(tmp_path))
    assert [r.name for r in rewards] == ["fad", "kad", "vendi"]
    assert rewards[0].reference is rewards[1].reference
    with pytest.raises(InputError, match="no reward spec"):
        make_rewards(" , ")


def test_batch_checks():
    with pytest.raises(InputError, match="need one per clip"):
        Batch([np.zeros(10)], 16000, ["a", "b"])
    with pytest.raises(InputError, match="the batch is empty"):
        Batch([], 16000, [])
