"""The synthclap encoder: training determinism, save/load, and its MiniLM text tower."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from audio_files import tone

from rewardkit.encoders.synthclap import SynthClapEncoder
from rewardkit.errors import InputError
from rewardkit.text import VOCAB_SIZE, MiniLM
from rewardkit.training.contrastive import TrainConfig, evaluate_retrieval, train_synthclap

TINY = TrainConfig(max_steps=25, batch_clips=12, minutes=2, channels=32, dim=64)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Low and high tones, slow and fast pulses: an easy world whose captions the audio determines."""
    root = tmp_path_factory.mktemp("tones")
    rows = []
    for i in range(24):
        high, fast = i % 2 == 1, (i // 2) % 2 == 1
        x = tone(880 if high else 110, 2.0 + 0.25 * (i % 4), 16000, seed=i)
        pulse = (np.sin(2 * np.pi * (6 if fast else 1.5) * np.arange(x.size) / 16000) > 0).astype(np.float32)
        sf.write(root / f"c{i:02d}.wav", x * (0.3 + 0.7 * pulse), 16000)
        rows.append({"file": f"c{i:02d}.wav", "caption": f"a {'high' if high else 'low'} tone, "
                                                         f"{'fast' if fast else 'slow'} pulses",
                     "caption_alt": f"{'fast' if fast else 'slow'} {'high' if high else 'low'} beeps"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("w")
    record = train_synthclap(corpus, out, config=TINY, log=lambda m: None)
    return out, record


def test_training_is_reproducible_bit_for_bit(corpus, trained, tmp_path):
    out, record = trained
    again = train_synthclap(corpus, tmp_path / "again", config=TINY, log=lambda m: None)
    assert record["steps"] == again["steps"] == 25
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "again" / "model.safetensors").read_bytes()
    other = train_synthclap(corpus, tmp_path / "other", config=TrainConfig(**{**TINY.__dict__, "seed": 1}),
                            log=lambda m: None)
    assert other["final_loss"] != record["final_loss"]


def test_trained_encoder_embeds_audio_and_text_in_one_space(corpus, trained):
    out, _ = trained
    enc = SynthClapEncoder(weights=out, device="cpu")
    assert enc.dim == 64 and enc.modalities == ("audio", "text")
    result = evaluate_retrieval(enc, corpus, candidates=24, draws=2)
    assert result["matched_cosine"] > result["shuffled_cosine"] + 0.1
    text = enc.embed_text(["a high tone, fast pulses", "slow low beeps"])
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-5)
    windows = np.stack([tone(440, 1.536, 16000)] * 2)
    assert enc.embed_windows(windows).shape == (2, 1, 64)
    assert enc.fingerprint() == SynthClapEncoder(weights=out).fingerprint()


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(InputError, match="train-encoder"):
        SynthClapEncoder(weights=tmp_path)


def test_minilm_is_the_real_sentence_encoder():
    m = MiniLM()
    e = m.embed(["a fast bright pluck melody in A minor", "a quick, bright plucked tune in A minor",
                 "slow dark pads in D major with no drums"])
    assert e.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2      # paraphrases closer than a different description
    assert len(m._load()[0]) == VOCAB_SIZE
