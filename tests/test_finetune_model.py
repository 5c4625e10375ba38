"""The adapter protocol on the built-in TinyDiffusion: determinism, save/load, loss, CFG, decode, pretrain, CLI.

Tiny configs only (a few thousand parameters, 32 frames), so the whole file
runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import json

import click
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from finetune.adapter import CheckpointError, DiffusionAdapter
from finetune.models.tiny_diffusion import REFERENCE_BPM, TinyDiffusion, beat_grid, rotate_positions
from finetune.pretrain import pretrain
from finetune.sample import sample_plan, write_samples
from rewardkit.errors import InputError
from rewardkit_cli._common import ToolGroup
from rewardkit_cli.finetune_cmds import pretrain_cmd, sample_cmd

TINY = {"channels": [16, 32], "blocks_per_level": 1, "emb_dim": 32, "attention_heads": 2, "n_frames": 32,
        "griffin_lim_iters": 4, "nnls_iters": 4}
PROMPTS = ["a low calm tone", "a high bright tone", "a fast pulsing tone"]


def tiny(seed: int = 0, **kw) -> TinyDiffusion:
    torch.manual_seed(seed)
    model = TinyDiffusion(**{**TINY, **kw})
    # The output conv starts at zero (an identity-like init); perturb every weight so outputs depend on all inputs.
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> TinyDiffusion:
    return tiny()


@pytest.fixture(scope="module")
def cond(model) -> torch.Tensor:
    return model.encode_prompts(PROMPTS)


def make_corpus(folder, n: int = 12, sr: int = 16000):
    """Tones whose caption names their pitch: a tiny text-to-audio task."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        high = i % 2 == 1
        freq = (880.0 if high else 220.0) * (1 + 0.02 * rng.standard_normal())
        seconds = 0.4 + 0.2 * (i % 3)                     # shorter and longer than the 0.512 s model length
        t = np.arange(int(seconds * sr)) / sr
        audio = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        name = f"tone{i:02d}.wav"
        sf.write(folder / name, audio, sr)
        rows.append({"file": name, "caption": "a high bright tone" if high else "a low calm tone",
                     "caption_alt": "treble beep" if high else "bass hum"})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder


def saved_without(model: TinyDiffusion, key: str, folder) -> TinyDiffusion:
    """``model`` saved with ``key`` removed from its config (a checkpoint from before the option), reloaded."""
    model.save(folder)
    record = json.loads((folder / "config.json").read_text())
    del record["config"][key]
    (folder / "config.json").write_text(json.dumps(record))
    return TinyDiffusion.load(folder)


def checked_samples(model: TinyDiffusion, cond: torch.Tensor, folder) -> torch.Tensor:
    """Guided samples of PROMPTS drawn together, after checking each is the same drawn alone and after a
    save to ``folder`` and a reload."""
    together = model.generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0, cond=cond)
    alone = torch.cat([model.generate([p], [s], steps=3, guidance=2.0, cond=cond[i:i + 1])
                       for i, (p, s) in enumerate(zip(PROMPTS, [1, 2, 3], strict=True))])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
    model.save(folder)
    torch.testing.assert_close(TinyDiffusion.load(folder).generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0,
                                                                   cond=cond), together, atol=0, rtol=0)
    return together


def test_it_is_an_adapter(model):
    assert isinstance(model, DiffusionAdapter)
    assert model.latent_shape == (64, 32) and model.sample_rate == 16000


def test_same_seed_same_latents_whatever_the_batch_layout(model, cond):
    together = model.generate(PROMPTS, [1, 2, 3], steps=4, guidance=2.0, cond=cond)
    alone = torch.cat([model.generate([p], [s], steps=4, guidance=2.0, cond=cond[i:i + 1])
                       for i, (p, s) in enumerate(zip(PROMPTS, [1, 2, 3], strict=True))])
    assert together.shape == (3, 64, 32)
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)  # in fact bit-identical on the CPU
    split = model.generate(PROMPTS, [1, 2, 3], steps=4, guidance=2.0, cond=cond, batch_size=2)
    torch.testing.assert_close(together, split, atol=1e-6, rtol=0)
    # The global RNG plays no part; another seed gives another sample.
    torch.manual_seed(999)
    again = model.generate(PROMPTS, [1, 2, 3], steps=4, guidance=2.0, cond=cond)
    assert torch.equal(together, again)
    other = model.generate(PROMPTS, [1, 2, 4], steps=4, guidance=2.0, cond=cond)
    assert torch.equal(other[:2], together[:2]) and not torch.allclose(other[2], together[2])


def test_rotary_positions_make_attention_scores_depend_on_the_offset_only():
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
    t = 12
    rq = rotate_positions(q.expand(t, 8), base=100.0)
    rk = rotate_positions(k.expand(t, 8), base=100.0)
    scores = rq @ rk.T                                      # scores[p, r] for the same q and k at every position
    for offset in range(-t + 1, t):
        diagonal = torch.diagonal(scores, offset)
        torch.testing.assert_close(diagonal, diagonal[:1].expand_as(diagonal), atol=1e-5, rtol=0)
    assert not torch.allclose(scores[0, 0], scores[0, 3])   # ... and it does depend on the offset
    torch.testing.assert_close(rq.norm(dim=1), q.norm().expand(t))  # a rotation: norms are kept
    torch.testing.assert_close(rq[0], q)                    # position 0 is not rotated


def test_a_rotary_model_is_batch_invariant_and_an_old_config_means_no_rotation(tmp_path, cond):
    rope = tiny(3, rope_base=100.0)
    plain = tiny(3)
    assert rope.config["rope_base"] == 100.0 and plain.config["rope_base"] == 0.0
    together = checked_samples(rope, cond, tmp_path / "rope")
    # Same weights, positions on or off: different samples (the rotation is really applied).
    assert (together - plain.generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0, cond=cond)).abs().max() > 1e-4
    # A checkpoint written before rope_base existed has no such key: it loads as content-only attention.
    assert saved_without(plain, "rope_base", tmp_path / "old").config["rope_base"] == 0.0
    with pytest.raises(InputError, match="rope_base"):
        TinyDiffusion(**{**TINY, "channels": [16, 30], "attention_heads": 2, "rope_base": 100.0})  # 15 per head


def test_beat_grid_starts_on_a_beat_and_cycles_at_the_tempo():
    grid = beat_grid(torch.tensor([120.0, 90.0]), 40, 0.032, 5)
    assert grid.shape == (2, 10, 40)
    torch.testing.assert_close(grid[:, :5, 0], torch.ones(2, 5))    # every cos is 1 at the clip start
    torch.testing.assert_close(grid[:, 5:, 0], torch.zeros(2, 5))
    seconds = np.arange(40) * 0.032
    for row, bpm in enumerate([120.0, 90.0]):
        for k, per_beat in enumerate([0.25, 0.5, 1.0, 2.0, 4.0]):
            phase = 2 * np.pi * bpm / 60 * per_beat * seconds
            np.testing.assert_allclose(grid[row, k].numpy(), np.cos(phase), atol=2e-5)
            np.testing.assert_allclose(grid[row, 5 + k].numpy(), np.sin(phase), atol=2e-5)


def test_a_beat_grid_model_predicts_its_tempo_from_the_caption_and_trains_on_the_real_one(tmp_path, cond):
    model = tiny(4, beat_harmonics=3)
    plain = tiny(4)
    assert model.config["beat_harmonics"] == 3 and plain.config["beat_harmonics"] == 0
    # Batch-invariant with guidance and reloaded exactly, like the plain model.
    checked_samples(model, cond, tmp_path / "beat")
    # The grid is an input: another tempo, another prediction.
    z, t = torch.randn(3, 64, 32), torch.full((3,), 0.5)
    with torch.no_grad():
        assert (model.net(z, t, cond, torch.full((3,), 80.0)) - model.net(z, t, cond, torch.full((3,), 160.0))
                ).abs().max() > 1e-3
    # Both guidance branches get the caption's tempo (never the null caption's), in every step.
    seen = []
    forward = model.net.forward
    model.net.forward = lambda z, t, text, bpm=None: (seen.append(bpm), forward(z, t, text, bpm))[1]
    model.generate(PROMPTS, [1, 2, 3], steps=2, guidance=2.0, cond=cond)
    del model.net.forward
    expected = model.net.predict_bpm(cond).detach()
    assert len(seen) == 2 and all(torch.equal(b, torch.cat([expected, expected])) for b in seen)
    # Pretraining: the v-loss on the real tempi's grid plus the tempo head's squared log2 error (captioned rows).
    x, eps = (torch.randn(3, 64, 32, generator=torch.Generator().manual_seed(i)) for i in range(2))
    t = torch.tensor([0.2, 0.5, 0.8])
    bpm = torch.tensor([70.0, 120.0, 150.0])
    text = cond.clone()
    text[1] = 0.0                                           # a dropped caption: no tempo target
    v = model._v_loss(model.net, x, eps, t, text, bpm).mean()
    head = model.net.tempo_head(text[[0, 2]])[:, 0]
    want = v + (head - torch.log2(bpm[[0, 2]] / REFERENCE_BPM)).square().mean()
    torch.testing.assert_close(model.pretrain_loss(x, eps, t, text, bpm), want)
    with pytest.raises(InputError, match="bpm"):
        model.pretrain_loss(x, eps, t, text)
    torch.testing.assert_close(plain.pretrain_loss(x, eps, t, text, bpm),
                               plain._v_loss(plain.net, x, eps, t, text).mean())
    # A config written before the grid existed means no grid.
    assert saved_without(plain, "beat_harmonics", tmp_path / "old").config["beat_harmonics"] == 0
    with pytest.raises(InputError, match="beat_harmonics"):
        TinyDiffusion(**{**TINY, "beat_harmonics": 9})


def test_pretrain_teaches_a_beat_grid_model_the_tempi_and_needs_them(tmp_path):
    data = tmp_path / "corpus"
    data.mkdir()
    make_corpus(data)
    meta = pd.read_csv(data / "metadata.csv")
    config = {**TINY, "beat_harmonics": 2}
    with pytest.raises(InputError, match="tempo_bpm"):
        pretrain(data, tmp_path / "none", max_steps=1, model_config=config, log=lambda _: None)
    meta["tempo_bpm"] = [150 if "high" in c else 80 for c in meta["caption"]]
    meta.to_csv(data / "metadata.csv", index=False)
    start = tiny(0, beat_harmonics=2)
    captions = ["a high bright tone", "a low calm tone"]
    target = torch.log2(torch.tensor([150.0, 80.0]) / REFERENCE_BPM)

    def error(m: TinyDiffusion) -> float:
        with torch.no_grad():
            predicted = m.net.predict_bpm(m.encode_prompts(captions))
        return float((torch.log2(predicted / REFERENCE_BPM) - target).abs().max())

    pretrain(data, tmp_path / "ck", seed=0, max_steps=80, batch_size=8, lr=3e-3, warmup_steps=5, ema_decay=0.9,
             model_config=config, log=lambda _: None)
    trained = TinyDiffusion.load(tmp_path / "ck")
    assert trained.config["beat_harmonics"] == 2
    assert error(trained) < 0.25 < error(start)             # within 19% of each caption's tempo
    meta["tempo_bpm"] = meta["tempo_bpm"].astype(object)
    meta.loc[3, "tempo_bpm"] = "fast"
    meta.to_csv(data / "metadata.csv", index=False)
    with pytest.raises(InputError, match="tempo_bpm"):
        pretrain(data, tmp_path / "bad", max_steps=1, model_config=config, log=lambda _: None)


def test_same_seed_same_audio_and_decode_contract(model, cond):
    latents = model.generate(PROMPTS[:2], [5, 6], steps=3, guidance=3.0, cond=cond[:2])
    first, second = model.decode(latents), model.decode(latents.clone())
    assert len(first) == 2
    for a, b in zip(first, second, strict=True):
        assert a.dtype == np.float32 and a.shape == (32 * 256,) == (model.num_samples,)
        assert np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="latents"):
        model.decode(torch.zeros(1, 64, 31))


def test_decode_inverts_the_representation_approximately():
    model = TinyDiffusion(**{**TINY, "griffin_lim_iters": 16, "nnls_iters": 20})
    t = np.arange(model.num_samples) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    latents = model.audio_to_latents([tone])
    back = model.audio_to_latents(model.decode(latents))
    # The 440 Hz band keeps its energy: the decoded clip is the same tone, not noise or silence.
    band = int(latents[0, :, 8:24].mean(dim=1).argmax())
    assert int(back[0, :, 8:24].mean(dim=1).argmax()) == band
    assert (back - latents)[0, :, 4:28].abs().mean() < 0.25 * latents[0].std()


def test_guidance_changes_the_sample(model, cond):
    plain = model.generate(PROMPTS[:1], [3], steps=3, guidance=1.0, cond=cond[:1])
    guided = model.generate(PROMPTS[:1], [3], steps=3, guidance=4.0, cond=cond[:1])
    assert not torch.allclose(plain, guided, atol=1e-4)
    # The null caption is its own (learned) embedding: zero rows and real captions differ.
    uncond = model.generate([""], [3], steps=3, guidance=1.0, cond=torch.zeros(1, 384))
    assert not torch.allclose(plain, uncond, atol=1e-4)


def test_per_sample_loss_shape_finite_and_reference_equal(cond):
    model = tiny(1)
    n = 3
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 64, 32, generator=gen)
    noise = torch.randn(n, 64, 32, generator=gen)
    t = model.sample_timesteps(n, gen)
    with pytest.raises(InputError, match="freeze_reference"):
        model.per_sample_loss(x, noise, t, cond, reference=True)
    model.freeze_reference()
    policy = model.per_sample_loss(x, noise, t, cond)
    reference = model.per_sample_loss(x, noise, t, cond, reference=True)
    assert policy.shape == (n,) and torch.all(torch.isfinite(policy))
    assert len(set(policy.tolist())) == n
    assert torch.equal(policy, reference)
    assert policy.requires_grad and not reference.requires_grad
    policy.sum().backward()
    assert all(p.grad is not None for p in model.trainable_parameters())
    assert all(p.grad is None for p in model.reference.parameters())
    # One optimiser step moves the policy away from the frozen reference.
    torch.optim.SGD(model.trainable_parameters(), lr=0.1).step()
    assert not torch.equal(model.per_sample_loss(x, noise, t, cond).detach(),
                           model.per_sample_loss(x, noise, t, cond, reference=True))


class Oracle(torch.nn.Module):
    """The exact v-prediction when the data are one point x0: v*(z, t) = (alpha_t z - x0) / sigma_t."""

    beat_harmonics = 0                                      # the network interface the sampler reads: no beat grid

    def __init__(self, model: TinyDiffusion, x0: torch.Tensor):
        super().__init__()
        self.model, self.x0 = model, x0

    def forward(self, z, t, text, bpm=None):
        alpha, sigma = (a[:, None, None] for a in self.model.alpha_sigma(t))
        return (alpha * z - self.x0) / sigma


def test_sampler_and_loss_agree_with_the_exact_denoiser():
    # With the ideal network DDIM must land on the data point for any number of steps and any guidance,
    # and the training loss must be zero: checks the x_hat / e_hat / z_s step and the target v = a eps - s x.
    model = tiny()
    x0 = torch.randn(1, 64, 32, generator=torch.Generator().manual_seed(4))
    model.net = Oracle(model, x0)
    cond = torch.zeros(2, 384)
    for steps, guidance in [(1, 1.0), (7, 3.0), (40, 1.0)]:
        out = model.generate(["", ""], [0, 1], steps=steps, guidance=guidance, cond=cond)
        torch.testing.assert_close(out, x0.expand(2, -1, -1), atol=1e-4, rtol=0)
    noise = torch.randn(3, 64, 32, generator=torch.Generator().manual_seed(5))
    loss = model.per_sample_loss(x0.expand(3, -1, -1), noise, torch.tensor([0.1, 0.5, 0.9]), torch.zeros(3, 384))
    torch.testing.assert_close(loss, torch.zeros(3), atol=1e-8, rtol=0)


def test_schedule_endpoints(model):
    alpha, sigma = model.alpha_sigma(torch.tensor([0.0, 0.5, 1.0]))
    assert alpha[0] == 1.0 and sigma[0] == 0.0 and alpha[2] == 0.0 and sigma[2] == 1.0
    torch.testing.assert_close(alpha.square() + sigma.square(), torch.ones(3))


def test_shifted_schedule_divides_the_snr_and_an_old_config_means_no_shift(tmp_path):
    t = torch.linspace(0, 1, 11)
    plain, shifted = tiny(0), tiny(0, schedule_shift=4.0)
    (a, s), (a4, s4) = plain.alpha_sigma(t), shifted.alpha_sigma(t)
    assert a4[0] == 1.0 and s4[0] == 0.0 and a4[-1] == 0.0 and s4[-1] == 1.0
    torch.testing.assert_close(a4.square() + s4.square(), torch.ones(11))
    inner = slice(1, -1)
    torch.testing.assert_close((a4 / s4)[inner].square(), (a / s)[inner].square() / 16, rtol=1e-5, atol=0)
    assert (a4[inner] < a[inner]).all()                     # more noise at every inner t
    # Training and sampling both go through the schedule: same weights, different samples.
    cond = torch.randn(2, 384, generator=torch.Generator().manual_seed(0))
    assert (plain.generate(PROMPTS[:2], [1, 2], steps=3, cond=cond)
            - shifted.generate(PROMPTS[:2], [1, 2], steps=3, cond=cond)).abs().max() > 1e-4
    torch.testing.assert_close(saved_without(plain, "schedule_shift", tmp_path / "old").alpha_sigma(t), (a, s),
                               atol=0, rtol=0)
    with pytest.raises(InputError, match="schedule_shift"):
        TinyDiffusion(**{**TINY, "schedule_shift": 0.0})


def test_save_load_round_trip_and_finetuned_weights_load(tmp_path, cond):
    model = tiny(2)
    model.save(tmp_path / "base", info={"note": "base"})
    record = json.loads((tmp_path / "base" / "config.json").read_text())
    assert record["class"] == "TinyDiffusion" and record["config"] == model.config
    assert list(record) == sorted(record) and record["training"] == {"note": "base"}
    loaded = TinyDiffusion.load(tmp_path / "base")
    assert loaded.config == model.config and loaded.training == {"note": "base"}
    base_latents = model.generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0, cond=cond)
    torch.testing.assert_close(loaded.generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0, cond=cond), base_latents,
                               atol=0, rtol=0)

    # A few optimiser steps, save, reload: the reloaded model is the fine-tuned one, not the base.
    opt = torch.optim.AdamW(loaded.trainable_parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(3, 64, 32, generator=gen)
        loss = loaded.per_sample_loss(x, torch.randn(3, 64, 32, generator=gen), loaded.sample_timesteps(3, gen),
                                      cond).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    loaded.save(tmp_path / "tuned")
    tuned = TinyDiffusion.load(tmp_path / "tuned")
    tuned_latents = tuned.generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0, cond=cond)
    assert (tuned_latents - base_latents).abs().max() > 1e-3
    torch.testing.assert_close(tuned_latents, loaded.generate(PROMPTS, [1, 2, 3], steps=3, guidance=2.0, cond=cond),
                               atol=0, rtol=0)


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="finetune pretrain") as missing:
        TinyDiffusion.load(tmp_path / "nowhere")
    assert "\n" not in str(missing.value)
    model = tiny()
    model.save(tmp_path / "ck")
    record = json.loads((tmp_path / "ck" / "config.json").read_text())
    record["config"]["channels"] = [16, 48]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="do not fit") as mismatch:
        TinyDiffusion.load(tmp_path / "ck")
    assert "\n" not in str(mismatch.value)


def test_generate_checks_its_inputs(model):
    with pytest.raises(InputError, match="seeds"):
        model.generate(PROMPTS, [1, 2], steps=2, guidance=1.0)
    with pytest.raises(InputError, match="one string"):
        model.generate("a tone", [1], steps=2, guidance=1.0)


def test_encode_prompts_is_minilm_and_blank_is_unconditional(model, cond):
    assert cond.shape == (3, 384)
    torch.testing.assert_close(cond.norm(dim=1), torch.ones(3))
    both = model.encode_prompts(["", PROMPTS[0]])
    assert torch.equal(both[0], torch.zeros(384))
    torch.testing.assert_close(both[1], cond[0])


def test_pretrain_writes_a_loadable_checkpoint_and_reduces_the_loss(tmp_path):
    data = tmp_path / "corpus"
    data.mkdir()
    make_corpus(data)
    config = {k: v for k, v in TINY.items()} | {"channels": [24, 48], "emb_dim": 48}
    logs = []
    info = pretrain(data, tmp_path / "ck", seed=0, minutes=1.0, max_steps=60, batch_size=8, lr=3e-3,
                    warmup_steps=5, model_config=config, command="test", log=logs.append)
    assert info["steps"] == 60 and info["finished"] and info["command"] == "test" and info["seed"] == 0
    assert info["final_eval_loss"] < 0.8 * info["initial_eval_loss"]
    assert any("step 50" in line for line in logs)
    model = TinyDiffusion.load(tmp_path / "ck")
    assert model.training["steps"] == 60
    assert model.config["latent_std"] > 0 and model.config["channels"] == [24, 48]
    assert (tmp_path / "ck" / "training_state.safetensors").is_file()

    # Seeded: the same seed and step budget train the same weights (bit for bit on the CPU); another seed does not.
    runs = {}
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        pretrain(data, tmp_path / name, seed=seed, max_steps=3, batch_size=4, model_config=config, log=logs.append)
        runs[name] = (tmp_path / name / "model.safetensors").read_bytes()
    assert runs["a"] == runs["b"] != runs["c"]

    # Through the CLI: --resume continues from the saved step (and its model config), and records the command.
    result = CliRunner().invoke(cli_group(), ["pretrain", "--data", str(data), "-o", str(tmp_path / "ck"),
                                              "--max-steps", "65", "--batch-size", "8", "--resume"])
    assert result.exit_code == 0, result.output
    more = json.loads(result.stdout)
    assert more["steps"] == 65 and more["command"].startswith("finetune ")
    assert more["commands"][0] == "test" and more["commands"][1] == more["command"]
    assert TinyDiffusion.load(tmp_path / "ck").config == model.config
    missing = CliRunner().invoke(cli_group(), ["pretrain", "--data", str(data), "-o", str(tmp_path / "fresh"),
                                               "--resume"])
    assert missing.exit_code == 1 and "resume" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    # A trained checkpoint is never replaced by accident.
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        pretrain(data, tmp_path / "ck", seed=0, max_steps=1, log=logs.append)


def cli_group() -> click.Group:
    """The commands wired as finetune_main will wire them."""
    group = ToolGroup("finetune")
    group.add_command(pretrain_cmd)
    group.add_command(sample_cmd)
    return group


def test_cli_sample_writes_n_wavs_and_a_manifest(tmp_path):
    tiny().save(tmp_path / "ck")
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text("a high bright tone\n\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_group(), ["sample", "--prompt", "a low calm tone", "--prompts", str(prompts_file),
                                              "-n", "2", "-o", str(out), "--checkpoint", str(tmp_path / "ck"),
                                              "--steps", "2", "--seed", "7", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert len(files) == 4 and len(list(out.glob("*.wav"))) == 4
    audio, sr = sf.read(files[0], dtype="float32")
    assert sr == 16000 and audio.shape == (32 * 256,)
    manifest = pd.read_csv(out / "prompts.csv")
    assert list(manifest["seed"]) == [7, 8, 9, 10]
    assert list(manifest["prompt"]) == ["a low calm tone"] * 2 + ["a high bright tone"] * 2


def test_cli_missing_checkpoint_is_one_line(tmp_path):
    result = CliRunner().invoke(cli_group(), ["sample", "--prompt", "x", "-o", str(tmp_path / "o"),
                                              "--checkpoint", str(tmp_path / "none")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finetune: error: ") and "finetune pretrain" in lines[0]


def test_sample_plan_and_write_samples_batch_independent(tmp_path, model):
    prompts, seeds = sample_plan(["a", "b"], 2, 10)
    assert prompts == ["a", "a", "b", "b"] and seeds == [10, 11, 12, 13]
    one = write_samples(model, prompts[:2], seeds[:2], tmp_path / "one", steps=2, batch_size=1)
    two = write_samples(model, prompts[:2], seeds[:2], tmp_path / "two", steps=2, batch_size=2)
    for a, b in zip(one, two, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(sf.read(a)[0], sf.read(b)[0])
