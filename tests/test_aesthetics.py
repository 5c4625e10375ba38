import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from audio_files import tone, write_good_set

import rewardkit as rk
from rewardkit import encoders
from rewardkit.aesthetics import AestheticsPredictor
from rewardkit.errors import InputError
from rewardkit.training.aesthetics import train_head


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    """Clips whose rating falls with their noise level, as a rater of quality would."""
    root = tmp_path_factory.mktemp("rated")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        level = rng.uniform(0, 1)
        x = tone(rng.uniform(150, 600), 1.5, 16000, seed=i) + level * 0.3 * rng.normal(size=24000)
        sf.write(root / f"r{i:02d}.wav", np.clip(x, -1, 1).astype(np.float32), 16000)
        rows.append({"file": f"r{i:02d}.wav", "rating": 5 - 4 * level + rng.normal(scale=0.2)})
    pd.DataFrame(rows).to_csv(root / "ratings.csv", index=False)
    return root


@pytest.fixture(scope="module")
def mel():
    return encoders.get("mel", device="cpu")


def test_head_learns_ratings_and_round_trips(rated, mel, tmp_path):
    record = train_head(rated / "ratings.csv", mel, tmp_path / "head.safetensors", seed=0, epochs=300)
    assert record["heldout"] == 24 and record["validation"] == 14
    assert record["heldout_plcc"] > 0.8 and record["heldout_srcc"] > 0.7
    head = AestheticsPredictor(tmp_path / "head.safetensors")
    assert head.encoder == mel.fingerprint()
    embedded = rk.embedding.embed_directory(rated, mel)
    scores = head.score(embedded.pooled())
    assert scores.shape == (120,) and (scores >= 1).all() and (scores <= 5).all()
    again = train_head(rated / "ratings.csv", mel, tmp_path / "again", seed=0, epochs=300)
    assert again["heldout_plcc"] == record["heldout_plcc"]           # seeded


def test_score_reports_aesthetics_and_refuses_another_encoder(rated, mel, tmp_path):
    train_head(rated / "ratings.csv", mel, tmp_path / "head", seed=0, epochs=100)
    write_good_set(tmp_path / "ref", 3)
    report = rk.score(rated, tmp_path / "ref", encoder=mel, aesthetics=tmp_path / "head.safetensors",
                      use_cache=False)
    assert 1 <= report.metrics["aesthetics"] <= 5 and "aesthetics" in report.per_song.columns
    other = encoders.get("mel", n_mels=32, device="cpu")
    with pytest.raises(InputError, match="aesthetics head trained on encoder mel:"):
        rk.score(rated, tmp_path / "ref", encoder=other, aesthetics=tmp_path / "head.safetensors", use_cache=False)


@pytest.mark.parametrize("content, message", [
    ("file,score\na.wav,3\n", "needs columns file,rating"),
    ("file,rating\n" + "".join(f"r{i:02d}.wav,3\n" for i in range(5)), "at least 10"),
    ("file,rating\nr00.wav,good\n" + "".join(f"r{i:02d}.wav,3\n" for i in range(1, 12)), "is not a number"),
])
def test_bad_ratings_files(rated, mel, tmp_path, content, message):
    (rated / "bad.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        train_head(rated / "bad.csv", mel, tmp_path / "h")


def test_missing_head_file(tmp_path):
    with pytest.raises(InputError, match="no such aesthetics head"):
        AestheticsPredictor(tmp_path / "nope.safetensors")


def test_frame_statistics_values_and_errors():
    from rewardkit.aesthetics import frame_statistics

    a = np.array([[0.0, 1.0], [2.0, 5.0]])
    got = frame_statistics([a, a[:1]], ("mean", "std", "max", "min"))
    np.testing.assert_allclose(got, [[1, 3, 1, 2, 2, 5, 0, 1], [0, 1, 0, 0, 0, 1, 0, 1]])
    b = np.array([[0.0], [1.0], [3.0], [2.0]])        # differences 1, 2, -1; second differences 1, -3
    np.testing.assert_allclose(frame_statistics([b, b[:2], b[:1]], ("delta", "delta2")),
                               [[4 / 3, 2.0], [1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(InputError, match="features: expected distinct names"):
        frame_statistics([a], ("mean", "median"))
    with pytest.raises(InputError, match=r"frames\[1\]: has dimension 4, expected 2"):
        frame_statistics([a, np.ones((3, 4))], ("mean",), dim=2)
    with pytest.raises(InputError, match="wrap a single file's frames in a list"):
        frame_statistics(a, ("mean",))


def _variation_frames(n: int, seed: int):
    """Files whose rating is set by how much their windows vary, not by their mean window."""
    rng = np.random.default_rng(seed)
    frames, ratings = [], []
    for _ in range(n):
        centre, spread = rng.normal(size=8), rng.uniform(0, 1)
        signs = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)[:, None]
        frames.append(centre + spread * signs + 0.01 * rng.normal(size=(6, 8)))
        ratings.append(5 - 4 * spread)
    return frames, np.array(ratings)


@pytest.mark.parametrize("features, reads_variation", [(("mean",), False), (("mean", "std"), True)])
def test_head_reads_the_window_statistics_its_sidecar_names(tmp_path, features, reads_variation):
    from rewardkit.aesthetics import frame_statistics, save_head
    from rewardkit.training.aesthetics import fit_head, split_indices

    frames, y = _variation_frames(400, seed=0)
    train, val, _ = split_indices(len(y), seed=0)
    x = frame_statistics(frames, features)
    head, config, _ = fit_head(x, y, train, val, dim=8, features=features, epochs=300)
    save_head(head, config, "toy:0", tmp_path / "head", {"seed": 0})
    loaded = AestheticsPredictor(tmp_path / "head.safetensors")
    assert loaded.features == features
    test_frames, test_y = _variation_frames(100, seed=1)
    pred = loaded.score_frames(test_frames)
    assert pred.dtype == np.float64 and pred.shape == (100,) and ((pred >= 1) & (pred <= 5)).all()
    plcc = np.corrcoef(pred, test_y)[0, 1]
    assert (plcc > 0.95) if reads_variation else (abs(plcc) < 0.3)
    if features == ("mean",):
        np.testing.assert_array_equal(loaded.score(np.array([f.mean(axis=0) for f in test_frames])), pred)
    else:
        with pytest.raises(InputError, match="call score_frames or score_set"):
            loaded.score(np.zeros((2, 8)))
    with pytest.raises(InputError, match=r"frames\[0\]: has dimension 5, expected 8"):
        loaded.score_frames([np.zeros((3, 5))])


def test_sidecar_without_features_reads_the_mean(rated, mel, tmp_path):
    import json

    train_head(rated / "ratings.csv", mel, tmp_path / "head", seed=0, epochs=20)
    meta = json.loads((tmp_path / "head.json").read_text())
    del meta["config"]["features"], meta["config"]["dropout"]       # as heads written before features existed
    (tmp_path / "head.json").write_text(json.dumps(meta))
    head = AestheticsPredictor(tmp_path / "head.safetensors")
    assert head.features == ("mean",)
    embedded = rk.embedding.embed_directory(rated, mel)
    np.testing.assert_allclose(head.score_set(embedded), head.score(embedded.pooled()), rtol=0, atol=1e-12)
    meta["config"]["features"] = ["mean", "spectral_flux"]
    (tmp_path / "head.json").write_text(json.dumps(meta))
    with pytest.raises(rk.errors.RewardkitError, match="this rewardkit knows mean, std, max, min"):
        AestheticsPredictor(tmp_path / "head.safetensors")


def test_score_set_refuses_another_encoders_frames(rated, mel, tmp_path):
    train_head(rated / "ratings.csv", mel, tmp_path / "head", seed=0, epochs=20, features=("mean", "std"))
    head = AestheticsPredictor(tmp_path / "head.safetensors")
    other = encoders.get("mel", n_mels=32, device="cpu")
    with pytest.raises(InputError, match="aesthetics head trained on encoder"):
        head.score_set(rk.embedding.embed_directory(rated, other))


def test_shipped_synthclap_head_reproduces_its_heldout_plcc(tmp_path):
    """A small rated corpus of a seed the head never saw, scored as the reward code scores it."""
    from scipy import stats

    from rewardkit import synth
    from rewardkit.embedding import embed_files

    head = AestheticsPredictor.default_for("synthclap")
    enc = encoders.get("synthclap", device="cpu")
    assert head is not None and head.encoder == enc.fingerprint()
    assert head.training["command"].startswith("rewardkit aesthetics train") and "seed" in head.training
    meta = synth.make_corpus(tmp_path, 80, seed=3, degrade_fraction=0.5)
    embedded = embed_files([tmp_path / f for f in meta["file"]], enc)
    pred = head.score_frames([f.frames for f in embedded.files])
    truth = pd.read_csv(tmp_path / "ratings.csv")["rating"].to_numpy()
    # 80 clips: the standard error of a PLCC near 0.7 is about 0.06
    assert stats.pearsonr(pred, truth)[0] > head.training["heldout_plcc"] - 0.2
