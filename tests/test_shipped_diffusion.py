"""The committed base checkpoint of the built-in diffusion model loads and generates audio."""

import json

import numpy as np
import torch

from finetune.models.tiny_diffusion import ASSET_DIR, TinyDiffusion


def test_shipped_checkpoint_generates_finite_audio_with_its_recorded_command():
    record = json.loads((ASSET_DIR / "config.json").read_text())
    assert "finetune pretrain" in json.dumps(record)
    assert (ASSET_DIR / "model.safetensors").stat().st_size <= 30 * 2**20
    torch.set_num_threads(1)
    model = TinyDiffusion.load()
    latents = model.generate(["a fast bright pluck melody in A minor", "slow dark pads in D major, no drums"],
                             [0, 1], steps=4, guidance=3.0)
    audio = model.decode(latents)
    assert len(audio) == 2 and all(a.dtype == np.float32 and np.isfinite(a).all() for a in audio)
    assert all(np.abs(a).max() > 1e-3 for a in audio)           # not silence
    assert not np.allclose(audio[0], audio[1])


def test_shipped_checkpoint_reads_the_tempo_off_held_out_captions():
    # The shipped base has a beat grid whose tempo head reads the caption (TRAINING.md); on 48 held-out
    # captions (sampler seed 7, as in benchmarks/bench_base_model.py) it named the tempo class of 0.81 of 96.
    from rewardkit import synth

    torch.set_num_threads(1)
    model = TinyDiffusion.load()
    assert model.config["beat_harmonics"] > 0
    pairs = synth.sample_captions(48, 7)
    with torch.no_grad():
        bpm = model.net.predict_bpm(model.encode_prompts([c for c, _ in pairs])).numpy()
    hits = [synth.tempo_class_for(b) == a.tempo_class for b, (_, a) in zip(bpm, pairs, strict=True)]
    assert np.mean(hits) >= 0.7
    assert np.all((bpm > 50) & (bpm < 220))
