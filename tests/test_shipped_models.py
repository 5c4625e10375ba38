"""The trained artifacts that ship in the package reproduce their recorded figures.

The synthclap encoder and its aesthetics head were produced by the commands
recorded in rewardkit/assets/*/ (config.json / *.json and TRAINING.md); here a
small held-out corpus of the same seeds is regenerated and re-measured.
"""

import json

import numpy as np
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
