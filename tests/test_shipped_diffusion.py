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
