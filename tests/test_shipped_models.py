"""The trained artifacts that ship in the package reproduce their recorded figures.

The synthclap encoder and the aesthetics heads (synthclap's, mel's) were produced by the
commands recorded in rewardkit/assets/*/ (config.json / *.json and TRAINING.md); here
small held-out corpora of the same seeds are regenerated and re-measured.
"""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from rewardkit import encoders, synth
from rewardkit.aesthetics import AestheticsPredictor
from rewardkit.embedding import embed_files
from rewardkit.encoders.synthclap import ASSET_DIR
from rewardkit.training.contrastive import evaluate_retrieval

# rewardkit/assets/synthclap/TRAINING.md: `rewardkit synth make data/synthclap-heldout --n 300 --seed 1`
HELDOUT_SEED = 1
RECORD = json.loads((ASSET_DIR / "config.json").read_text())["training"]


@pytest.fixture(scope="module")
def encoder():
    return encoders.get("synthclap", device="cpu")


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    # The first 100 clips of the recorded held-out corpus (seed 1): clip i does not depend on n.
    folder = tmp_path_factory.mktemp("heldout")
    synth.make_corpus(folder, 100, seed=HELDOUT_SEED, overwrite=True)
    return folder


def test_recorded_training_command_and_figures_are_present():
    assert RECORD["command"].startswith("rewardkit train-encoder") and RECORD["config"]["seed"] == 0
    assert RECORD["train_seconds"] <= 20 * 60
    assert (ASSET_DIR / "model.safetensors").stat().st_size <= 20 * 2**20


def test_encoder_reproduces_its_heldout_retrieval(encoder, heldout):
    got = evaluate_retrieval(encoder, heldout, candidates=100, draws=1)
    want = RECORD["heldout"]
    assert got["recall@1"] == pytest.approx(want["recall@1"], abs=0.15)
    assert got["recall@1"] > 10 * got["chance@1"]
    # matched caption-audio pairs score clearly higher than shuffled pairs
    assert got["matched_cosine"] > got["shuffled_cosine"] + 0.3


def test_degraded_clips_get_lower_aesthetics_than_clean_ones(encoder, heldout, tmp_path):
    head = AestheticsPredictor.default_for("synthclap")
    assert head is not None and head.encoder == encoder.fingerprint()
    files = sorted(heldout.glob("clip_*.wav"))[:30]
    rng = np.random.default_rng(0)
    for i, f in enumerate(files):
        audio, rate = sf.read(f, dtype="float32")
        kind = synth.DEGRADATIONS[i % len(synth.DEGRADATIONS)]
        sf.write(tmp_path / f.name, synth.degrade(audio, kind, 0.8, rng), rate)
    clean = head.score(embed_files(files, encoder).pooled())
    degraded = head.score(embed_files([tmp_path / f.name for f in files], encoder).pooled())
    assert degraded.mean() < clean.mean() - 0.5
    assert (degraded < clean).mean() > 0.7


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    # A half-degraded rated corpus of a seed no head was trained or selected on (bench_synthworld's).
    folder = tmp_path_factory.mktemp("rated")
    meta = synth.make_corpus(folder, 120, seed=3, degrade_fraction=0.5, overwrite=True)
    return folder, meta


def test_mel_head_reproduces_its_heldout_plcc_on_an_independent_corpus(rated):
    from scipy import stats

    folder, meta = rated
    head = AestheticsPredictor.default_for("mel")
    enc = encoders.get("mel", device="cpu")
    assert head is not None and head.encoder == enc.fingerprint()
    pred = head.score_set(embed_files([folder / f for f in meta["file"]], enc))
    truth = pd.read_csv(folder / "ratings.csv").set_index("file").loc[list(meta["file"]), "rating"].to_numpy()
    assert stats.pearsonr(pred, truth)[0] == pytest.approx(head.training["heldout_plcc"], abs=0.1)
    assert head.training["heldout_plcc"] >= 0.8


def test_mel_head_hears_the_detune_and_jitter_synthclap_misses(heldout, tmp_path):
    head, enc = AestheticsPredictor.default_for("mel"), encoders.get("mel", device="cpu")
    files = sorted(heldout.glob("clip_*.wav"))[:24]
    clean = head.score_set(embed_files(files, enc))
    rng = np.random.default_rng(0)
    for kind in ("detune", "jitter"):
        out = tmp_path / kind
        out.mkdir()
        for f in files:
            audio, rate = sf.read(f, dtype="float32")
            sf.write(out / f.name, synth.degrade(audio, kind, 0.8, rng), rate)
        degraded = head.score_set(embed_files([out / f.name for f in files], enc))
        assert (degraded < clean).mean() > 0.7, kind
