"""The DRAGON loop: losses, splitters, prompts, a tiny run end to end, exact resume (also after a kill), eval, plot.

Tiny random TinyDiffusion configs (32 frames = 0.5 s) and cheap rewards, so the
file runs in about a minute on two CPU cores.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from finetune.adapter import CheckpointError, FinetuneError
from finetune.evaluate import evaluate, wilson_interval
from finetune.generations import GenerationCache, model_digest
from finetune.loop import RunConfig, pair_batch, round_seeds, run
from finetune.losses import dpo_loss, kto_loss
from finetune.models.tiny_diffusion import TinyDiffusion
from finetune.plot import plot_run
from finetune.prompts import load_prompts
from finetune.splitters import check_splitter, split
from rewardkit.errors import InputError
from rewardkit.rewards import DISTRIBUTION, INSTANCE, Scored
from rewardkit_cli.finetune_main import main as finetune_main

TINY = {"channels": [16, 32], "blocks_per_level": 1, "emb_dim": 32, "attention_heads": 2, "n_frames": 32,
        "griffin_lim_iters": 4, "nnls_iters": 4}
PROMPTS = ["a low calm tone", "a high bright tone", "a fast pulsing tone", "a slow soft pad", "a loud noisy hit",
           "a gentle pluck melody", "a dark drone", "a bright bell arpeggio", "a punchy kick loop",
           "a warm organ chord"]
REWARDS = textwrap.dedent("""
    import numpy as np

    def brightness(audio, sample_rate, prompts):
        # Share of spectral energy above 2 kHz: a per-clip reward a tiny model can move.
        out = []
        for a in audio:
            spec = np.abs(np.fft.rfft(a.astype(np.float64))) ** 2
            freqs = np.fft.rfftfreq(a.shape[0], 1.0 / sample_rate)
            out.append(float(spec[freqs > 2000].sum() / max(spec.sum(), 1e-12)))
        return out
""")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("dragon")
    torch.manual_seed(0)
    model = TinyDiffusion(**TINY)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save(root / "base")
    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    (root / "dragon_test_rewards.py").write_text(REWARDS)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def config(world, **kw) -> RunConfig:
    base = {"reward": "dragon_test_rewards:brightness", "checkpoint": str(world / "base"),
            "prompts": str(world / "prompts.txt"), "heldout_size": 2, "rounds": 3, "prompts_per_round": 3,
            "samples_per_prompt": 2, "demo_steps": 2, "eval_steps": 2, "updates_per_round": 2, "lr": 1e-3,
            "beta": 50.0, "checkpoint_every": 1, "keep_last": 0, "seed": 3}
    return RunConfig(**{**base, **kw})


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# ------------------------------------------------------------------ losses
def test_dpo_loss_follows_its_formula_and_is_log2_when_policy_equals_reference():
    w, lose = torch.tensor([0.30, 0.20]), torch.tensor([0.25, 0.40])
    same = dpo_loss(w, lose, w, lose, beta=100.0)
    assert same.loss.item() == pytest.approx(math.log(2)) and same.accuracy == 0.0 and same.kl_proxy == 0.0
    pol_w, pol_l = torch.tensor([0.29, 0.21], requires_grad=True), torch.tensor([0.26, 0.40], requires_grad=True)
    out = dpo_loss(pol_w, pol_l, w, lose, beta=100.0)
    logits = np.array([(0.30 - 0.25) - (0.29 - 0.26), (0.20 - 0.40) - (0.21 - 0.40)])
    assert out.loss.item() == pytest.approx(np.mean(np.log1p(np.exp(-100 * logits))), rel=1e-5)
    assert out.accuracy == 0.5
    out.loss.backward()
    # Lowering the winner's MSE (and raising the loser's) lowers the loss.
    assert (pol_w.grad > 0).all() and (pol_l.grad < 0).all()


def test_kto_loss_follows_its_formula_with_a_detached_reference_point():
    ref = torch.tensor([0.3, 0.3, 0.3, 0.3])
    pol = torch.tensor([0.28, 0.31, 0.29, 0.33], requires_grad=True)
    desirable = torch.tensor([True, True, False, False])
    out = kto_loss(pol, ref, desirable, beta=10.0, lambda_desirable=1.0, lambda_undesirable=2.0)
    g = (ref - pol).detach().numpy()
    z = max(g.mean(), 0.0)
    sign = np.array([1, 1, -1, -1])
    lam = np.array([1, 1, 2, 2])
    expected = np.mean(lam * (1 - 1 / (1 + np.exp(-sign * 10 * (g - z)))))
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    out.loss.backward()
    assert pol.grad[0] > 0 and pol.grad[2] < 0      # desirable: lower MSE helps; undesirable: higher MSE helps


# ------------------------------------------------------------------ splitters
def test_best_worst_pairs_the_extremes_of_each_prompt_and_skips_ties():
    values = np.array([0.1, 0.9, 0.5, 0.2, 0.2, 0.2, 3.0, -1.0, 0.0])     # 3 prompts x 3 samples
    s = split(Scored("r", INSTANCE, values), "best-worst", "dpo", 3, 3)
    assert s.pairs.tolist() == [[1, 0], [6, 7]]
    assert s.counts == (2, 2)


def test_all_pairs_orders_every_pair_of_a_prompt_and_skips_ties():
    values = np.array([0.1, 0.9, 0.5, 0.2, 0.2, 0.7])     # 2 prompts x 3 samples
    s = split(Scored("r", INSTANCE, values), "all-pairs", "dpo", 2, 3)
    assert sorted(map(tuple, s.pairs.tolist())) == [(1, 0), (1, 2), (2, 0), (5, 3), (5, 4)]


def test_all_pairs_denoises_each_sample_once_at_its_prompts_timestep():
    values = np.array([0.1, 0.9, 0.5, 0.3, 0.2, 0.4, 0.7, 0.6])     # 2 prompts x 4 samples: 6 pairs each
    s = split(Scored("r", INSTANCE, values), "all-pairs", "dpo", 2, 4)
    order = np.random.default_rng(0).permutation(s.size)               # a minibatch in shuffled order
    pairs, groups = s.pairs[order], s.groups[order]
    samples, sample_group, slots, n_groups = pair_batch(pairs, groups)
    assert sorted(samples.tolist()) == list(range(8)) and n_groups == 2
    assert np.array_equal(samples[slots], pairs)                       # every pair finds its two samples
    assert np.array_equal(sample_group[slots[:, 0]], sample_group[slots[:, 1]])    # a pair shares t and noise
    prompt = samples // 4
    assert len(set(zip(prompt.tolist(), sample_group.tolist(), strict=True))) == 2     # one group per prompt
    assert set(sample_group.tolist()) == {0, 1}


def test_denoising_each_sample_once_gives_the_per_pair_loss_and_gradient(world):
    model = TinyDiffusion.load(world / "base")
    model.freeze_reference()
    values = np.array([0.1, 0.9, 0.5, 0.3, 0.2, 0.4, 0.7, 0.6])
    s = split(Scored("r", INSTANCE, values), "all-pairs", "dpo", 2, 4)
    samples, sample_group, slots, n_groups = pair_batch(s.pairs, s.groups)
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(8, *model.latent_shape, generator=gen)
    cond = model.encode_prompts(["a tone"] * 4 + ["a drum"] * 4)
    t_group = model.sample_timesteps(n_groups, gen)
    noise_group = torch.randn(n_groups, *latents.shape[1:], generator=gen)

    def loss_and_grad(index, group, win, lose):
        model.net.zero_grad()
        t, noise = t_group[group], noise_group[group]
        pol = model.per_sample_loss(latents[index], noise, t, cond[index])
        ref = model.per_sample_loss(latents[index], noise, t, cond[index], reference=True)
        loss = dpo_loss(pol[win], pol[lose], ref[win], ref[lose], beta=50.0).loss
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.trainable_parameters()]

    once = loss_and_grad(torch.from_numpy(samples), torch.from_numpy(sample_group), *map(torch.from_numpy, slots.T))
    m = s.size                                    # the plain layout: winners then losers, one row per pair member
    prompt_group = torch.from_numpy(sample_group[np.argsort(samples)])      # group of sample i
    index = torch.from_numpy(np.concatenate([s.pairs[:, 0], s.pairs[:, 1]]))
    plain = loss_and_grad(index, prompt_group[index], torch.arange(m), torch.arange(m, 2 * m))
    assert once[0] == pytest.approx(plain[0], rel=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(once[1], plain[1], strict=True))


def test_pair_batch_keeps_one_draw_per_pair_when_samples_are_in_one_pair():
    values = np.array([0.1, 0.9, 0.5, 0.2, 0.3, 0.2, 3.0, -1.0, 0.0])
    s = split(Scored("r", INSTANCE, values), "best-worst", "dpo", 3, 3)
    pairs = s.pairs[::-1]
    samples, sample_group, slots, n_groups = pair_batch(pairs, s.groups[::-1])
    assert samples.tolist() == pairs[:, 0].tolist() + pairs[:, 1].tolist()
    assert sample_group.tolist() == [0, 1, 2, 0, 1, 2] and n_groups == 3
    assert slots.tolist() == [[0, 3], [1, 4], [2, 5]]
    with pytest.raises(FinetuneError, match="two groups"):
        pair_batch(np.array([[0, 1], [0, 2]]), np.array([0, 1]))


def test_set_splitter_makes_the_better_half_positive_and_keeps_pairs_by_prompt():
    values = np.zeros(8)

    def set_value(idx):
        return -float(np.sum(np.asarray(idx) % 4 >= 2))      # samples k=2,3 of a prompt make a set worse

    scored = Scored("fad", DISTRIBUTION, values, set_value)
    s = split(scored, "set", "dpo", 2, 4)
    assert s.pairs.tolist() == [[0, 2], [1, 3], [4, 6], [5, 7]]      # (D1 winner, D2 loser), same prompt
    assert s.set_values == (0.0, -4.0)
    k = split(scored, "set", "kto", 2, 4)
    assert k.samples.tolist() == [0, 1, 4, 5, 2, 3, 6, 7] and k.counts == (4, 4)


def test_kto_splitters_always_give_both_labels_or_nothing():
    values = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    per_prompt = split(Scored("r", INSTANCE, values), "prompt", "kto", 2, 3)
    assert per_prompt.samples.tolist() == [0, 2, 3, 5] and per_prompt.desirable.tolist() == [False, True] * 2
    per_batch = split(Scored("r", INSTANCE, values), "batch", "kto", 2, 3)
    assert per_batch.desirable.tolist() == [False, False, False, True, True, True]
    flat = split(Scored("r", INSTANCE, np.ones(6)), "batch", "kto", 2, 3)
    assert flat.size == 0


@pytest.mark.parametrize("splitter, loss, k, message", [
    ("best-worst", "dpo", 1, "needs K >= 2"),
    ("set", "dpo", 3, "K must be even"),
    ("prompt", "dpo", 4, "does not go with loss dpo"),
    ("best-worst", "kto", 4, "does not go with loss kto"),
])
def test_splitter_checks(splitter, loss, k, message):
    with pytest.raises(InputError, match=message):
        check_splitter(splitter, loss, k)


# ------------------------------------------------------------------ prompts
def test_prompt_sources_keep_heldout_prompts_apart(world):
    file_set = load_prompts(str(world / "prompts.txt"), seed=1, heldout_size=3)
    assert len(file_set.heldout) == 2 and not set(file_set.heldout) & set(file_set.train)
    assert sorted(file_set.train + file_set.heldout) == sorted(PROMPTS)
    synth = load_prompts("synth:4", heldout_size=20)
    assert len(synth.heldout) == 20 and not set(synth.heldout) & set(synth.train)
    assert synth.sample(5, 0, 3) == synth.sample(5, 0, 3) != synth.sample(5, 0, 4)
    (world / "empty.txt").write_text("\n\n")
    with pytest.raises(InputError, match="contains no captions"):
        load_prompts(str(world / "empty.txt"))
    assert round_seeds(0, 1, 3) == round_seeds(0, 1, 3) != round_seeds(0, 2, 3)


# ------------------------------------------------------------------ a run
def test_a_run_logs_every_round_checkpoints_and_changes_the_model(world, tmp_path):
    summary = run(config(world, eval_every=2), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1, 2, 3]
    assert set(records[0]) == {"round", "eval_reward", "seconds_eval"}          # the base, before any update
    records = records[1:]
    for key in ("reward", "value_std", "loss", "accuracy", "policy_mse", "reference_mse", "kl_proxy", "grad_norm",
                "lr", "positives", "negatives", "seconds_generate", "seconds_train"):
        assert all(np.isfinite(r[key]) for r in records), key
    assert "eval_reward" in records[1] and "eval_reward" not in records[0]
    assert (tmp_path / "run" / "log.csv").read_text().startswith("round,reward,")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["rounds"] == 3 and saved["base_weights_sha256"]
    assert saved["reward"] == {"name": "brightness", "kind": "instance"}
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "LATEST", "round-000001", "round-000002", "round-000003"]
    base, final = weights(world / "base"), weights(Path(summary["final"]))
    assert any(not torch.equal(base[k], final[k]) for k in base)
    # The fine-tuned model loads back as a TinyDiffusion and differs from its base in what it generates.
    tuned, ref = TinyDiffusion.load(summary["final"]), TinyDiffusion.load(world / "base")
    assert not torch.equal(tuned.generate(["a tone"], [1], steps=2), ref.generate(["a tone"], [1], steps=2))


def test_resume_from_any_checkpoint_ends_with_bitwise_the_same_weights(world, tmp_path):
    run(config(world, ema=0.5), tmp_path / "straight")
    run(config(world, ema=0.5, rounds=1), tmp_path / "stopped")            # as if interrupted after round 1
    resumed = run(run_dir=tmp_path / "stopped", resume=True, rounds=3)
    assert resumed["rounds"] == 3
    a, b = weights(tmp_path / "straight" / "final"), weights(tmp_path / "stopped" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = (tmp_path / "straight" / "log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "stopped" / "log.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if not k.startswith("seconds")} for x in log_a]
    assert strip == [{k: v for k, v in json.loads(x).items() if not k.startswith("seconds")} for x in log_b]


@pytest.mark.parametrize("lora_rank", [0, 2])
def test_a_beat_grid_model_fine_tunes_and_resumes_bitwise(world, tmp_path, lora_rank):
    # The shipped base's architecture options (beat grid, shifted schedule, rotary attention), tiny.
    torch.manual_seed(1)
    model = TinyDiffusion(**TINY, beat_harmonics=2, schedule_shift=8.0, rope_base=100.0)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save(tmp_path / "grid")
    head = model.net.tempo_head[0].weight.clone()
    kw = {"checkpoint": str(tmp_path / "grid"), "lora_rank": lora_rank}
    run(config(world, **kw), tmp_path / "straight")
    run(config(world, rounds=1, **kw), tmp_path / "stopped")
    run(run_dir=tmp_path / "stopped", resume=True, rounds=3)
    a, b = weights(tmp_path / "straight" / "final"), weights(tmp_path / "stopped" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The tempo head is trained too: the DPO loss reaches it through the grid.
    assert not torch.equal(a["tempo_head.0.weight"], head)


def test_a_killed_run_resumes_to_the_same_weights(world, tmp_path):
    """SIGKILL a `finetune run` process right after its second checkpoint, resume it, compare with a full run."""
    args = ["--reward", "dragon_test_rewards:brightness", "--checkpoint", str(world / "base"), "--prompts",
            str(world / "prompts.txt"), "--heldout-size", "2", "--rounds", "4", "--prompts-per-round", "3",
            "--samples-per-prompt", "2", "--demo-steps", "2", "--lr", "1e-3", "--beta", "50",
            "--checkpoint-every", "1", "--keep-last", "2", "--seed", "5", "--quiet", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(world), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "rewardkit_cli.finetune_main", "run"]
    subprocess.run([*cli, *args, "-o", str(tmp_path / "full")], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*cli, *args, "-o", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    latest = tmp_path / "killed" / "checkpoints" / "LATEST"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (latest.is_file() and latest.read_text().strip() == "round-000002"):
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "final").exists(), "the run finished before it could be killed"
    done = subprocess.run([*cli, "--resume", str(tmp_path / "killed"), "--quiet", "--threads", "1"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = weights(tmp_path / "full" / "final"), weights(tmp_path / "killed" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len((tmp_path / "killed" / "log.jsonl").read_text().splitlines()) == 4
    assert len(list((tmp_path / "killed" / "checkpoints").glob("round-*"))) == 2          # keep-last


def test_a_nan_loss_stops_the_run_and_leaves_the_last_checkpoint_intact(world, tmp_path, monkeypatch):
    run(config(world, rounds=1), tmp_path / "run")
    before = (tmp_path / "run" / "checkpoints" / "round-000001" / "model.safetensors").read_bytes()
    original = TinyDiffusion.per_sample_loss

    def poisoned(self, *args, **kwargs):
        return original(self, *args, **kwargs) * float("nan")

    monkeypatch.setattr(TinyDiffusion, "per_sample_loss", poisoned)
    with pytest.raises(FinetuneError, match=r"loss is nan at round 2, update 1; stopped.*round-000001 is untouched"):
        run(run_dir=tmp_path / "run", resume=True, rounds=3)
    assert (tmp_path / "run" / "checkpoints" / "LATEST").read_text().strip() == "round-000001"
    assert (tmp_path / "run" / "checkpoints" / "round-000001" / "model.safetensors").read_bytes() == before
    assert (tmp_path / "run" / "checkpoints" / "stopped-round-000002" / "model.safetensors").is_file()


@pytest.mark.parametrize("change, message", [
    ({"reward": "rewardkit:nope"}, "unknown rewardkit reward 'nope'"),
    ({"reward": "rewardkit:fad?encoder=mel"}, "fad needs a reference set"),
    ({"reward": "rewardkit:fad?encoder=mel", "ref": "/no/such/dir"}, "no such reference"),
    ({"samples_per_prompt": 1}, "needs K >= 2"),
    ({"prompts": "EMPTY"}, "contains no captions"),
    ({"loss": "kto", "splitter": "best-worst"}, "does not go with loss kto"),
    ({"reward": "rewardkit:vendi?encoder=mel", "samples_per_prompt": 3}, "K must be even"),
])
def test_bad_inputs_fail_before_anything_is_trained(world, tmp_path, change, message):
    if change.get("prompts") == "EMPTY":
        (tmp_path / "empty.txt").write_text(" \n")
        change = {**change, "prompts": str(tmp_path / "empty.txt")}
    with pytest.raises(InputError, match=message):
        run(config(world, **change), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_several_timesteps_per_sample_average_their_mse_and_resume_exactly(world, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="timesteps-per-sample: must be at least 1"):
        config(world, timesteps_per_sample=0)
    seen = []
    original = TinyDiffusion.per_sample_loss

    def spy(self, latents, noise, timesteps, cond, reference=False):
        seen.append((latents.shape[0], timesteps.detach().clone()))
        return original(self, latents, noise, timesteps, cond, reference)

    monkeypatch.setattr(TinyDiffusion, "per_sample_loss", spy)
    run(config(world, rounds=1, updates_per_round=1, timesteps_per_sample=3, splitter="all-pairs"), tmp_path / "a")
    (n_policy, t_policy), (n_ref, t_ref) = seen[-2:]
    assert n_policy == n_ref == 3 * 6                     # 3 prompts x 2 samples, each at 3 timesteps
    assert torch.equal(t_policy, t_ref) and t_policy.unique().numel() == 3 * 3      # 3 draws per prompt
    monkeypatch.undo()
    run(config(world, rounds=2, timesteps_per_sample=2, ema=0.5), tmp_path / "straight")
    run(config(world, rounds=1, timesteps_per_sample=2, ema=0.5), tmp_path / "stopped")
    run(run_dir=tmp_path / "stopped", resume=True, rounds=2)
    a, b = weights(tmp_path / "straight" / "final"), weights(tmp_path / "stopped" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_folder_is_never_overwritten_by_accident(world, tmp_path):
    run(config(world, rounds=1), tmp_path / "run")
    with pytest.raises(InputError, match="already holds a run"):
        run(config(world, rounds=1), tmp_path / "run")


# ------------------------------------------------------------------ eval, plot, CLI
def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)


def test_eval_reports_before_after_and_win_rates_for_every_reward(world, tmp_path):
    run(config(world, rounds=2), tmp_path / "run")
    frame = evaluate(tmp_path / "run", rewards="rewardkit:vendi?encoder=mel", samples_per_prompt=2, bootstrap=50)
    assert list(frame.index) == ["brightness", "vendi"]                 # the optimised reward is always there
    assert bool(frame.loc["brightness", "optimised"]) and not bool(frame.loc["vendi", "optimised"])
    row = frame.loc["brightness"]
    assert row["n"] == 2 and row["unit"] == "prompts" and 0 <= row["win_rate"] <= 1
    assert row["win_lo"] <= row["win_rate"] <= row["win_hi"]
    assert row["delta"] == pytest.approx(row["after"] - row["before"])
    assert frame.loc["vendi", "unit"] == "bootstrap sets" and frame.loc["vendi", "n"] == 50
    saved = json.loads((tmp_path / "run" / "eval" / "eval.json").read_text())
    assert [r["reward"] for r in saved["rewards"]] == ["brightness", "vendi"]
    # Evaluating the base against itself is a draw on every prompt.
    same = evaluate(tmp_path / "run", checkpoint=str(world / "base"), bootstrap=20)
    assert same.loc["brightness", "win_rate"] == 0.5 and same.loc["brightness", "delta"] == 0


def test_eval_takes_the_base_clips_from_its_cache_and_ignores_a_broken_entry(world, tmp_path):
    run(config(world, rounds=1), tmp_path / "run")
    cache, logs = GenerationCache(tmp_path / "generations"), []
    first = evaluate(tmp_path / "run", bootstrap=20, base_cache=cache, log=logs.append)
    entries = list((tmp_path / "generations").glob("*/*.npz"))
    assert len(entries) == 1 and any("with the base model" in m for m in logs)
    logs.clear()
    again = evaluate(tmp_path / "run", bootstrap=20, base_cache=cache, log=logs.append)
    assert any("from the cache" in m for m in logs) and not any("with the base model" in m for m in logs)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, evaluate(tmp_path / "run", bootstrap=20, cache_base=False))
    entries[0].write_bytes(entries[0].read_bytes()[:-40])           # truncated: a miss, generated afresh
    logs.clear()
    pd.testing.assert_frame_equal(first, evaluate(tmp_path / "run", bootstrap=20, base_cache=cache, log=logs.append))
    assert any("with the base model" in m for m in logs)
    # The key follows the base model's bytes.
    shutil.copytree(world / "base", tmp_path / "edited")
    weights_file = tmp_path / "edited" / "model.safetensors"
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 1
    weights_file.write_bytes(bytes(data))
    assert model_digest(tmp_path / "edited") != model_digest(world / "base") is not None


def test_the_base_cache_key_names_everything_that_changes_the_clips(monkeypatch):
    args = dict(model="tiny_diffusion", digest="d" * 64, prompts=["a", "b"], seeds=[0, 1], steps=20, guidance=3.0,
                device="cpu")
    key = GenerationCache.key(**args)
    assert key == GenerationCache.key(**args)
    for change in ({"prompts": ["a", "c"]}, {"seeds": [0, 2]}, {"steps": 10}, {"guidance": 2.0},
                   {"digest": "e" * 64}, {"device": "cuda"}):
        assert GenerationCache.key(**{**args, **change}) != key, change
    # The CPU thread count changes the clips' rounding, so it is part of the key there (and only there).
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert GenerationCache.key(**args) != key
    assert GenerationCache.key(**{**args, "device": "cuda:1"}) == GenerationCache.key(**{**args, "device": "cuda"})


def test_plot_and_the_cli(world, tmp_path):
    (tmp_path / "run.toml").write_text(textwrap.dedent(f"""
        reward = "dragon_test_rewards:brightness"
        checkpoint = "{world / 'base'}"
        prompts = "{world / 'prompts.txt'}"
        heldout-size = 2
        rounds = 2
        prompts-per-round = 2
        samples-per-prompt = 2
        demo-steps = 2
        eval-steps = 2
    """))
    runner = CliRunner()
    out = runner.invoke(finetune_main, ["run", "--config", str(tmp_path / "run.toml"), "--rounds", "1", "--quiet",
                                        "-o", str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["rounds"] == 1                       # the flag overrides the file
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["samples_per_prompt"] == 2
    out = runner.invoke(finetune_main, ["plot", str(tmp_path / "run")])
    assert out.exit_code == 0 and Path(out.stdout.strip()).read_bytes()[:4] == b"\x89PNG"
    out = runner.invoke(finetune_main, ["eval", str(tmp_path / "run"), "--format", "csv", "--bootstrap", "20"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0].startswith("reward,kind,optimised,before,after,delta")
    bad = runner.invoke(finetune_main, ["run", "--reward", "rewardkit:what", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 1 and bad.stderr.strip().splitlines()[-1].startswith(
        "finetune: error: reward 'rewardkit:what': unknown rewardkit reward")
    assert plot_run(tmp_path / "run", tmp_path / "c.png") == tmp_path / "c.png"


# ------------------------------------------------------------------ LoRA
def test_lora_starts_as_the_base_trains_only_adapters_and_saves_merged_weights(world, tmp_path):
    model = TinyDiffusion.load(world / "base")
    x = torch.randn(3, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(3, *model.latent_shape, generator=torch.Generator().manual_seed(1))
    t, cond = torch.tensor([0.2, 0.5, 0.9]), model.encode_prompts(PROMPTS[:3])
    before = model.per_sample_loss(x, eps, t, cond).detach()
    model.enable_lora(4)
    params = model.trainable_parameters()
    assert params and all(p.requires_grad for p in params)
    assert sum(p.numel() for p in params) < model.num_parameters() / 2
    assert torch.equal(model.per_sample_loss(x, eps, t, cond).detach(), before)      # B = 0: the same network
    with torch.no_grad():
        for p in params:
            p.add_(0.05 * torch.randn_like(p))
    moved = model.per_sample_loss(x, eps, t, cond).detach()
    assert not torch.allclose(moved, before)
    assert torch.equal(model.per_sample_loss(x, eps, t, cond, reference=True), before)   # adapters off = reference
    model.save(tmp_path / "merged")
    plain = TinyDiffusion.load(tmp_path / "merged")
    torch.testing.assert_close(plain.per_sample_loss(x, eps, t, cond).detach(), moved, rtol=1e-5, atol=1e-6)


def test_a_lora_run_resumes_exactly_and_leaves_the_base_weights_alone(world, tmp_path):
    run(config(world, lora_rank=2), tmp_path / "straight")
    run(config(world, lora_rank=2, rounds=2), tmp_path / "stopped")
    run(run_dir=tmp_path / "stopped", resume=True, rounds=3)
    a, b = weights(tmp_path / "straight" / "final"), weights(tmp_path / "stopped" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    base = weights(world / "base")
    assert set(a) == set(base) and any(not torch.equal(a[k], base[k]) for k in a)
    with pytest.raises(CheckpointError, match="do not fit this run's model"):
        # A full fine-tune cannot resume from a LoRA checkpoint.
        saved = json.loads((tmp_path / "stopped" / "config.json").read_text())
        saved["config"]["lora_rank"] = 0
        (tmp_path / "stopped" / "config.json").write_text(json.dumps(saved))
        run(run_dir=tmp_path / "stopped", resume=True, rounds=4)


def test_kto_minibatches_hold_both_labels(world):
    from finetune.loop import _Run
    from finetune.splitters import Split

    fake = _Run.__new__(_Run)
    fake.config = config(world, loss="kto", batch_size=4)
    demos = Split(samples=np.arange(10), desirable=np.array([True] * 8 + [False] * 2))
    for seed in range(20):
        chosen = fake.minibatch(demos, torch.Generator().manual_seed(seed)).numpy()
        assert len(chosen) == 4 and len(set(chosen)) == 4
        labels = demos.desirable[chosen]
        assert labels.any() and not labels.all()
