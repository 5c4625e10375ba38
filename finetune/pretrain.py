"""Pretraining of the built-in :class:`~finetune.models.tiny_diffusion.TinyDiffusion` on a corpus folder.

A corpus folder holds 16 kHz mono clips and a ``metadata.csv`` with columns
``file`` and ``caption`` (alternative wordings in ``caption_*`` columns are
used as augmentation), as ``rewardkit synth make DIR`` writes it.

The loop, top to bottom:

1. Seed everything: ``torch.manual_seed(seed)`` (weight init), one numpy
   Generator (batches, caption choice, CFG drop) and one torch Generator
   (noise and timesteps). On the CPU a run with a step budget is reproducible.
2. Precompute once: the log-mel of every clip and the MiniLM embedding of
   every caption wording; measure the corpus's log-mel mean and std, which
   become the model's ``latent_mean`` / ``latent_std`` config.
3. Each step: a batch of clips, one random wording each, 10 % of them replaced by
   the unconditional (zero) caption; the v-prediction loss of
   :meth:`TinyDiffusion.pretrain_loss` at t ~ U(0, 1) (for a beat grid
   model, with the clips' ``tempo_bpm`` and the tempo head's loss); AdamW, gradient
   clipping at 1, linear warm-up then cosine decay of the learning rate over the
   expected number of steps (re-estimated from the pace so far when the
   budget is wall-clock time); an EMA of the weights.
4. Every ``checkpoint_minutes`` and at the end: the EMA weights as a loadable
   checkpoint (``model.safetensors`` + ``config.json``, each written atomically),
   and ``training_state.safetensors`` / ``training_state.json`` (raw weights,
   AdamW moments, RNG states, step) for ``resume=True``. A run killed at any
   moment leaves its last checkpoint usable.

The training record in config.json has the command, seed, steps, time, final
train loss and a fixed-batch evaluation loss before and after (the same
clips, noise and stratified timesteps every time, so the two compare).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rewardkit.audio import load_audio
from rewardkit.errors import InputError
from rewardkit.training.contrastive import caption_variants, read_corpus

from .adapter import CheckpointError
from .models.tiny_diffusion import TinyDiffusion, save_checkpoint

STATE_WEIGHTS = "training_state.safetensors"
STATE_JSON = "training_state.json"
EVAL_SEED = 20250417


def corpus_log_mels(model: TinyDiffusion, folder: Path, files: list[str], batch: int = 64) -> torch.Tensor:
    """Un-normalised log-mel of every clip [shape=(n, n_mels, n_frames)], float32, on the CPU."""
    out = []
    with torch.no_grad():
        for s in range(0, len(files), batch):
            audio = [load_audio(folder / name, model.sample_rate) for name in files[s:s + batch]]
            out.append(model.log_mel(audio).cpu())
    return torch.cat(out)


def eval_loss(model: TinyDiffusion, net: torch.nn.Module, latents: torch.Tensor, cond: torch.Tensor,
              bpm: torch.Tensor | None = None) -> float:
    """Mean v-loss of ``net`` on a fixed batch with fixed noise and stratified t = (i + 1/2) / n.

    ``bpm``: the clips' tempi for a beat grid model (as in training); ignored otherwise.
    """
    n = latents.shape[0]
    gen = torch.Generator().manual_seed(EVAL_SEED)
    noise = torch.randn(latents.shape, generator=gen)
    t = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    with torch.no_grad():
        return float(model._v_loss(net, latents, noise, t, cond, bpm if net.beat_harmonics else None).mean())


def _lr_at(step: int, expected: int, lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0.1 lr at step ``expected``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, expected - warmup))
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save_state(out_dir: Path, model: TinyDiffusion, opt: torch.optim.Optimizer, gen: torch.Generator,
                rng: np.random.Generator, meta: dict[str, Any]) -> None:
    """Everything ``resume`` needs, as safetensors + JSON (no pickles)."""
    from safetensors.torch import save

    from rewardkit._fileio import atomic_write

    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    params = model.trainable_parameters()
    for i, p in enumerate(params):
        state = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                tensors[f"opt.{i}.{key}"] = state[key].detach().cpu().contiguous()
    tensors["rng.torch"] = gen.get_state()
    opt_step = [float(opt.state[p]["step"]) if "step" in opt.state.get(p, {}) else 0.0 for p in params]
    with atomic_write(out_dir / STATE_WEIGHTS) as f:
        f.write(save(tensors))
    with atomic_write(out_dir / STATE_JSON) as f:
        f.write(json.dumps({**meta, "numpy_rng": rng.bit_generator.state, "opt_step": opt_step},
                           indent=2, sort_keys=True).encode())


def _load_state(out_dir: Path, model: TinyDiffusion, opt: torch.optim.Optimizer, gen: torch.Generator,
                rng: np.random.Generator) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not (out_dir / STATE_WEIGHTS).is_file() or not (out_dir / STATE_JSON).is_file():
        raise CheckpointError(f"{out_dir}: resume asked but there is no {STATE_WEIGHTS}/{STATE_JSON} "
                              "(drop --resume to start a fresh run)")
    tensors = load_file(str(out_dir / STATE_WEIGHTS))
    meta = json.loads((out_dir / STATE_JSON).read_text())
    model.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
    for i, p in enumerate(model.trainable_parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"step": torch.tensor(meta["opt_step"][i]),
                            "exp_avg": tensors[f"opt.{i}.exp_avg"].to(p.device),
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(p.device)}
    gen.set_state(tensors["rng.torch"])
    rng.bit_generator.state = meta["numpy_rng"]
    return meta


def pretrain(data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, seed: int = 0,
             minutes: float = 40.0, max_steps: int = 100_000, batch_size: int = 32, lr: float = 1e-3,
             weight_decay: float = 0.01, warmup_steps: int = 200, ema_decay: float = 0.999,
             cond_drop: float = 0.1, checkpoint_minutes: float = 5.0, model_config: dict[str, Any] | None = None,
             device: str = "cpu", resume: bool = False, overwrite: bool = False, command: str = "",
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a TinyDiffusion on a corpus folder; write its checkpoint to ``out_dir``.

    Parameters
    ----------
    data_dir : path
        Corpus folder with ``metadata.csv`` (file, caption, ...).
    out_dir : path
        Checkpoint folder (created); load it with ``TinyDiffusion.load(out_dir)``.
    seed : int
        Seeds the initialisation, the batches, the noise and the timesteps.
    minutes, max_steps : float, int
        Stop at whichever comes first (the wall-clock budget counts the loop only).
    batch_size, lr, weight_decay, warmup_steps, ema_decay :
        Optimisation (AdamW, betas 0.9/0.99, cosine to 0.1 lr; EMA weights are the ones saved).
    cond_drop : float
        Probability that a caption is replaced by the unconditional one (classifier-free guidance).
    checkpoint_minutes : float
        Interval between checkpoints.
    model_config : dict, optional
        TinyDiffusion constructor arguments (``latent_mean`` / ``latent_std`` are measured, not taken).
    device : str
        Torch device.
    resume : bool
        Continue the run saved in ``out_dir`` (its model config wins); a missing
        training state is an error, never a silent fresh start.
    overwrite : bool
        Start a fresh run in an ``out_dir`` that already holds a checkpoint
        (otherwise an error, so a trained model is never replaced by accident).
    command : str
        The command line, recorded.
    log : callable
        Progress lines (to stderr in the CLI).

    Returns
    -------
    dict
        The training record also stored under ``"training"`` in config.json.
    """
    if batch_size < 1 or max_steps < 1 or minutes <= 0 or not 0 <= cond_drop < 1:
        raise InputError(f"need batch_size >= 1, max_steps >= 1, minutes > 0, 0 <= cond_drop < 1; got "
                         f"{batch_size}, {max_steps}, {minutes}, {cond_drop}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)

    config = dict(model_config or {})
    commands: list[str] = []
    if resume:
        if not (out_dir / "config.json").is_file():
            raise CheckpointError(f"{out_dir}: resume asked but there is no config.json "
                                  "(drop --resume to start a fresh run)")
        saved = json.loads((out_dir / "config.json").read_text())
        config = saved["config"]
        commands = list(saved.get("training", {}).get("commands", []))
    else:
        if (out_dir / "model.safetensors").exists() and not overwrite:
            raise CheckpointError(f"{out_dir}: already holds a checkpoint; pass --resume to continue it, "
                                  "--overwrite to replace it, or choose another folder")
        config.pop("latent_mean", None)
        config.pop("latent_std", None)
    meta = read_corpus(data_dir)
    probe = TinyDiffusion(**config, device=device)
    tempi = None                     # checked before the slow precompute, so a bad column fails at once
    if probe.config["beat_harmonics"]:
        if "tempo_bpm" not in meta.columns:
            raise InputError(f"{data_dir / 'metadata.csv'}: a beat grid model (beat_harmonics > 0) needs a "
                             "'tempo_bpm' column (the clips' tempi; `rewardkit synth make` writes one)")
        tempi = torch.tensor(pd.to_numeric(meta["tempo_bpm"], errors="coerce").to_numpy(np.float32))
        if not (torch.isfinite(tempi) & (tempi > 0)).all():
            raise InputError(f"{data_dir / 'metadata.csv'}: 'tempo_bpm' needs a positive number on every row")
    log_mels = corpus_log_mels(probe, data_dir, list(meta["file"]))
    if not resume:
        # Two scalars make the data roughly unit-variance, like the noise it is mixed with.
        config.update(latent_mean=round(float(log_mels.mean()), 4), latent_std=round(float(log_mels.std()), 4))
    torch.manual_seed(seed)  # the init must not depend on what the probe consumed
    model = TinyDiffusion(**config, device=device)
    del probe
    latents = model.normalise(log_mels).to(device)
    variants = caption_variants(meta)
    flat = [c for v in variants for c in v]
    text = model.encode_prompts(flat)
    starts = np.cumsum([0] + [len(v) for v in variants])
    n_clips = len(meta)
    log(f"pretrain: {n_clips} clips, {len(flat)} captions, {model.num_parameters() / 1e6:.2f} M parameters, "
        f"latent mean {config['latent_mean']} std {config['latent_std']}, "
        f"{time.perf_counter() - t_start:.0f} s to precompute")

    # Fixed evaluation batch: the first clips with their first caption.
    eval_rows = np.arange(min(64, n_clips))
    eval_latents = latents[torch.from_numpy(eval_rows).to(latents.device)]
    eval_cond = text[torch.from_numpy(starts[eval_rows]).to(text.device)]
    eval_bpm = None if tempi is None else tempi[torch.from_numpy(eval_rows)]

    opt = torch.optim.AdamW(model.trainable_parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=weight_decay)
    step, previous_seconds = 0, 0.0
    if resume:
        state = _load_state(out_dir, model, opt, gen, rng)
        step, previous_seconds = int(state["step"]), float(state["train_seconds"])
        initial_eval = float(state["initial_eval_loss"])
        log(f"pretrain: resumed at step {step}")
    else:
        initial_eval = eval_loss(model, model.net, eval_latents, eval_cond, eval_bpm)
    ema = copy.deepcopy(model.net).requires_grad_(False)
    if resume:
        from safetensors.torch import load_file

        ema.load_state_dict(load_file(str(out_dir / "model.safetensors"), device=str(model.device)), strict=True)

    def record(final: bool) -> dict[str, Any]:
        info = {"command": command, "commands": [*commands, command], "seed": seed, "steps": step,
                "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "warmup_steps": warmup_steps,
                "ema_decay": ema_decay, "cond_drop": cond_drop, "data": str(data_dir), "clips": n_clips,
                "captions": len(flat),
                "train_seconds": round(previous_seconds + time.perf_counter() - loop_start, 1),
                "final_loss": round(float(np.mean(losses[-100:])), 5) if losses else None,
                "initial_eval_loss": round(initial_eval, 5),
                "device": str(model.device), "torch": torch.__version__, "finished": final}
        if final:
            info["final_eval_loss"] = round(eval_loss(model, ema, eval_latents, eval_cond, eval_bpm), 5)
        return info

    def checkpoint(final: bool) -> dict[str, Any]:
        info = record(final)
        save_checkpoint(out_dir, ema.state_dict(), model.config, info)
        _save_state(out_dir, model, opt, gen, rng, {"step": step, "train_seconds": info["train_seconds"],
                                                    "initial_eval_loss": initial_eval})
        return info

    budget = minutes * 60.0
    losses: list[float] = []
    loop_start = last_checkpoint = time.perf_counter()
    first_step = step
    model.net.train()
    while step < max_steps and time.perf_counter() - loop_start < budget:
        # Expected total steps: the step budget, or what the time budget allows at the pace so far.
        done = step - first_step
        pace = (time.perf_counter() - loop_start) / done if done else None
        expected = max_steps if pace is None else min(max_steps, step + int((budget - (time.perf_counter()
                                                                                        - loop_start)) / pace))
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, max(expected, step + 1), lr, warmup_steps)

        clips = rng.choice(n_clips, size=batch_size, replace=n_clips < batch_size)
        rows = starts[clips] + rng.integers(0, starts[clips + 1] - starts[clips])
        cond = text[torch.from_numpy(rows).to(text.device)]
        cond[torch.from_numpy(rng.random(batch_size) < cond_drop).to(cond.device)] = 0.0
        x = latents[torch.from_numpy(clips).to(latents.device)]
        noise = torch.randn(x.shape, generator=gen).to(device)
        t = model.sample_timesteps(batch_size, gen)
        loss = model.pretrain_loss(x, noise, t, cond, None if tempi is None else tempi[torch.from_numpy(clips)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
        # EMA with a warm-up (decay grows from 0.1 towards ema_decay), so short runs are not dominated by the init.
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.net.parameters(), strict=True):
                e.lerp_(p, 1.0 - decay)
        if step % 50 == 0:
            log(f"pretrain: step {step}, loss {np.mean(losses[-50:]):.4f}, lr {opt.param_groups[0]['lr']:.2e}, "
                f"{time.perf_counter() - loop_start:.0f} s")
        if time.perf_counter() - last_checkpoint > checkpoint_minutes * 60:
            checkpoint(final=False)
            last_checkpoint = time.perf_counter()
            log(f"pretrain: checkpoint at step {step} in {out_dir}")
    model.net.eval()
    info = checkpoint(final=True)
    log(f"pretrain: {step} steps, final loss {info['final_loss']}, eval loss {info['initial_eval_loss']} -> "
        f"{info['final_eval_loss']}, wrote {out_dir}")
    return info
