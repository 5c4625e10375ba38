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
