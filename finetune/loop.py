"""The DRAGON loop: generate on-policy, score with a rewardkit reward, split, DPO/KTO step against a frozen reference.

One round (DESIGN.md, "The loop")::

    prompts  = P training prompts, seeded by (seed, round)
    clips    = adapter.generate(prompts x K, seeds derived from (seed, round), demo_steps) -> decode
    scored   = reward.score(clips, prompts)            per-sample values (+ set values)
    split    = splitter(scored)                        DPO pairs or KTO labels (finetune.splitters)
    for u in updates_per_round:                        t and eps drawn from a generator seeded by (seed, round, u),
        loss = dpo|kto(policy vs reference)            shared within a pair's group (its prompt for all-pairs);
                                                       each sample denoised once per update (or averaged over
                                                       --timesteps-per-sample draws)
        AdamW step (gradient clipping, optional EMA)
    log one record; checkpoint every N rounds

Every random draw comes from a generator seeded by ``(seed, round, ...)``,
and the checkpoint holds the weights, the AdamW moments, the EMA weights
and torch's global RNG, so a run resumed from any checkpoint ends with the
same weights as one that never stopped (bitwise on the CPU with
``deterministic=True`` and the same thread count).

The reference is the model as loaded, before the first update
(``freeze_reference``); resuming reloads it from the same base checkpoint,
whose weights hash is recorded in the run's config.json and checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit import __version__
from rewardkit._fileio import atomic_write
from rewardkit.cache import file_digest
from rewardkit.errors import InputError
from rewardkit.rewards import Batch, Reward, make_reward

from .adapter import CheckpointError, FinetuneError
from .checkpoint import latest_checkpoint, load_state, prune, save_state, write_json
from .losses import dpo_loss, kto_loss
from .models import base_folder, load_model
from .prompts import PromptSet, load_prompts
from .splitters import check_splitter, default_splitter, split

__all__ = ["RunConfig", "load_run_config", "pair_batch", "round_seeds", "run"]

LOG_COLUMNS = ["round", "reward", "value_mean", "value_std", "value_min", "value_max", "set_first", "set_second",
               "positives", "negatives", "loss", "accuracy", "policy_mse", "reference_mse", "kl_proxy", "grad_norm",
               "lr", "eval_reward", "seconds_generate", "seconds_reward", "seconds_train", "seconds_eval",
               "seconds_round"]


@dataclass
class RunConfig:
    """Every option of a run; saved as config.json and read back by ``--resume``."""

    reward: str
    ref: str | None = None
    encoder: str | None = None
    model: str = "tiny_diffusion"
    checkpoint: str | None = None
    rounds: int = 20
    prompts_per_round: int = 8
    samples_per_prompt: int = 4
    loss: str = "dpo"
    splitter: str | None = None
    beta: float = 2500.0
    kto_lambda_desirable: float = 1.0
    kto_lambda_undesirable: float = 1.0
    lr: float = 2e-5
    warmup: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    updates_per_round: int = 2
    timesteps_per_sample: int = 1
    batch_size: int = 0
    ema: float = 0.0
    demo_steps: int = 10
    guidance: float = 3.0
    prompts: str = "synth"
    prompt_column: str | None = None
    heldout_prompts: str | None = None
    heldout_size: int = 64
    seed: int = 0
    checkpoint_every: int = 5
    keep_last: int = 2
    device: str = "cpu"
    deterministic: bool = True
    eval_every: int = 0
    eval_prompts: int = 16
    eval_steps: int = 20
    max_minutes: float = 0.0
    lora_rank: int = 0
    lora_alpha: float = 0.0

    def __post_init__(self):
        positive = ("rounds", "prompts_per_round", "samples_per_prompt", "updates_per_round", "timesteps_per_sample",
                    "demo_steps", "eval_prompts", "eval_steps", "heldout_size")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name.replace('_', '-')}: must be at least 1, got {getattr(self, name)}")
        for name in ("batch_size", "warmup", "checkpoint_every", "keep_last", "eval_every", "seed", "lora_rank",
                     "lora_alpha"):
            if int(getattr(self, name)) < 0:
                raise InputError(f"{name.replace('_', '-')}: must be >= 0, got {getattr(self, name)}")
        if self.loss not in ("dpo", "kto"):
            raise InputError(f"loss: must be dpo or kto, got {self.loss!r}")
        for name in ("beta", "lr"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name}: must be a positive number, got {value}")
        if not 0 <= self.ema < 1:
            raise InputError(f"ema: the decay must be in [0, 1), got {self.ema}")
        if not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise InputError(f"max-minutes: must be >= 0 (0: no limit), got {self.max_minutes}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise InputError("grad-clip and weight-decay must be >= 0")
        if not self.reward or not str(self.reward).strip():
            raise InputError("reward: no reward spec given")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any], source: str = "config") -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise InputError(f"{source}: unknown option {unknown[0]!r}")
        try:
            return cls(**record)
        except TypeError as exc:
            raise InputError(f"{source}: {exc}") from None


def load_run_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Options from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file, keys as on the command line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            record = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            record = yaml.safe_load(text) or {}
        else:
            raise InputError(f"{path}: config files are .toml, .yaml or .yml")
    except (ValueError, ImportError) as exc:
        raise InputError(f"{path}: not a valid config file ({str(exc).splitlines()[0]})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: must hold a table of options")
    return {str(k).replace("-", "_"): v for k, v in record.items()}


def round_seeds(seed: int, round_index: int, n: int) -> list[int]:
    """Generation seeds of one round: ``n`` 63-bit integers from SeedSequence([seed, round, 0])."""
    state = np.random.SeedSequence([seed, round_index, 0]).generate_state(n, dtype=np.uint64)
    return [int(s) & (2**63 - 1) for s in state]


def _first_seen(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``values`` in order of first appearance, and the position of each entry among them."""
    distinct, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return distinct[order], rank[inverse.reshape(-1)]


def pair_batch(pairs: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """What one DPO update computes for ``pairs`` [shape=(m, 2)] of ``groups`` [shape=(m,)].

    Each distinct sample is re-noised and denoised once, at its group's timestep and noise, however many
    pairs it is in. Returns ``(samples, sample_group, slots, n_groups)``: the distinct sample indices
    (winners first, in pair order), the group of each as a position 0..n_groups-1 in order of first
    appearance (the order in which the groups' timesteps and noise are drawn), and ``slots``
    [shape=(m, 2)], where each pair's winner and loser sit in ``samples``. When every sample is in one pair
    and every pair is its own group, this is the plain layout ``winners + losers``, one draw per pair.
    """
    members = np.concatenate([pairs[:, 0], pairs[:, 1]])
    samples, slot = _first_seen(members)
    group_ids, group_slot = _first_seen(np.asarray(groups))
    member_group = np.concatenate([group_slot, group_slot])
    sample_group = np.empty(samples.size, np.int64)
    sample_group[slot] = member_group
    if not np.array_equal(sample_group[slot], member_group):
        raise FinetuneError("splitter: a sample is in pairs of two groups, so its timestep and noise are ambiguous")
    return samples, sample_group, slot.reshape(2, -1).T, int(group_ids.size)


def _generator(seed: int, *key: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, *key]).generate_state(1, np.uint64)[0])
                                         & (2**63 - 1))


def _weights_hash(folder: Path | None) -> str | None:
    if folder is None or not (folder / "model.safetensors").is_file():
        return None
    return file_digest(folder / "model.safetensors")


def _write_logs(run_dir: Path, records: list[dict[str, Any]]) -> None:
    import pandas as pd

    with atomic_write(run_dir / "log.jsonl") as f:
        f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode())
    frame = pd.DataFrame(records, columns=LOG_COLUMNS)
    with atomic_write(run_dir / "log.csv") as f:
        f.write(frame.to_csv(index=False).encode())


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _Run:
    """The state of one run between rounds."""

    def __init__(self, config: RunConfig, run_dir: Path, reward: Reward, prompts: PromptSet, log: Callable):
        self.config, self.run_dir, self.reward, self.prompts, self.log = config, run_dir, reward, prompts, log
        self.splitter = config.splitter or default_splitter(config.loss, reward.kind)
        check_splitter(self.splitter, config.loss, config.samples_per_prompt)
        if config.prompts_per_round * (config.samples_per_prompt // 2) < reward.min_set and self.splitter == "set":
            raise InputError(f"prompts-per-round: the set splitter gives sets of P*K/2 clips, but {reward.name} "
                             f"needs at least {reward.min_set}")
        if config.prompts_per_round * config.samples_per_prompt < max(2, reward.min_set):
            raise InputError(f"prompts-per-round x samples-per-prompt: {reward.name} needs at least "
                             f"{max(2, reward.min_set)} clips per round")
        self.adapter = load_model(config.model, config.checkpoint, device=config.device)
        if config.lora_rank:
            if not callable(getattr(self.adapter, "enable_lora", None)):
                raise InputError(f"lora-rank: model {config.model} has no LoRA support (enable_lora)")
            self.adapter.enable_lora(config.lora_rank, config.lora_alpha or None)
        self.adapter.freeze_reference()
        self.params = self.adapter.trainable_parameters()
        if not self.params:
            raise FinetuneError(f"model {config.model}: has no trainable parameters")
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.ema = [p.detach().clone() for p in self.params] if config.ema > 0 else None
        self.updates = 0
        self.records: list[dict[str, Any]] = []

    # -------------------------------------------------------------- one round
    def lr_at(self, update: int) -> float:
        warm = self.config.warmup
        return self.config.lr * (min(1.0, (update + 1) / warm) if warm else 1.0)

    def run_round(self, r: int) -> dict[str, Any]:
        c, adapter = self.config, self.adapter
        start = time.perf_counter()
        prompts = self.prompts.sample(c.prompts_per_round, c.seed, r)
        batch_prompts = [p for p in prompts for _ in range(c.samples_per_prompt)]
        seeds = round_seeds(c.seed, r, len(batch_prompts))
        latents = adapter.generate(batch_prompts, seeds, steps=c.demo_steps, guidance=c.guidance)
        cond = adapter.encode_prompts(batch_prompts)           # for the loss; adapters cache prompt embeddings
        audio = adapter.decode(latents)
        t_gen = time.perf_counter()
        scored = self.reward.score(Batch(audio, adapter.sample_rate, batch_prompts))
        t_reward = time.perf_counter()
        demos = split(scored, self.splitter, c.loss, c.prompts_per_round, c.samples_per_prompt)
        record: dict[str, Any] = {"round": r + 1, "reward": scored.set_value(),
                                  "value_mean": float(scored.values.mean()), "value_std": float(scored.values.std()),
                                  "value_min": float(scored.values.min()), "value_max": float(scored.values.max())}
        if demos.set_values is not None:
            record["set_first"], record["set_second"] = demos.set_values
        record["positives"], record["negatives"] = demos.counts
        stats = self.train(r, latents, cond, demos) if demos.size else {}
        record.update(stats)
        t_train = time.perf_counter()
        if c.eval_every and (r + 1) % c.eval_every == 0:
            record["eval_reward"] = self.evaluate_heldout()
        end = time.perf_counter()
        record.update({"seconds_generate": t_gen - start, "seconds_reward": t_reward - t_gen,
                       "seconds_train": t_train - t_reward, "seconds_eval": end - t_train,
                       "seconds_round": end - start})
        return record

    def train(self, r: int, latents: torch.Tensor, cond: torch.Tensor, demos) -> dict[str, float]:
        c = self.config
        sums: dict[str, float] = {}
        for u in range(c.updates_per_round):
            gen = _generator(c.seed, r, 1, u)
            chosen = self.minibatch(demos, gen)
            if demos.pairs is not None:
                picked = chosen.numpy()
                samples, sample_group, slots, n_groups = pair_batch(demos.pairs[picked], demos.groups[picked])
                win, lose = (torch.from_numpy(slots[:, i]).to(latents.device) for i in (0, 1))
            else:
                samples = demos.samples[chosen.numpy()]
                sample_group, n_groups = np.arange(samples.size), samples.size
            pol, ref = self.denoising_losses(latents, cond, samples, sample_group, n_groups, gen)
            if demos.pairs is not None:
                out = dpo_loss(pol[win], pol[lose], ref[win], ref[lose], c.beta)
            else:
                desirable = torch.from_numpy(demos.desirable)[chosen].to(pol.device)
                out = kto_loss(pol, ref, desirable, c.beta, c.kto_lambda_desirable, c.kto_lambda_undesirable)
            if not torch.isfinite(out.loss):
                self.stop(r, f"loss is {out.loss.item()} at round {r + 1}, update {u + 1}")
            lr = self.lr_at(self.updates)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip if c.grad_clip > 0 else float("inf"))
            if not torch.isfinite(norm):
                self.optimizer.zero_grad(set_to_none=True)
                self.stop(r, f"gradient norm is {float(norm)} at round {r + 1}, update {u + 1}")
            self.optimizer.step()
            self.updates += 1
            if self.ema is not None:
                with torch.no_grad():
                    for e, p in zip(self.ema, self.params, strict=True):
                        e.lerp_(p.detach(), 1.0 - c.ema)
            for key, value in (("loss", out.loss.item()), ("accuracy", out.accuracy), ("policy_mse", out.policy_mse),
                               ("reference_mse", out.reference_mse), ("kl_proxy", out.kl_proxy),
                               ("grad_norm", float(norm)), ("lr", lr)):
                sums[key] = sums.get(key, 0.0) + value / c.updates_per_round
        return sums

    def denoising_losses(self, latents: torch.Tensor, cond: torch.Tensor, samples: np.ndarray,
                         sample_group: np.ndarray, n_groups: int, gen: torch.Generator):
        """Policy and reference denoising MSE of ``samples`` [shape=(n,)], each group at shared t and noise.

        With ``timesteps_per_sample`` N > 1, every group draws N (t, noise) and each sample's MSE is the
        mean over them: a lower-variance estimate of the same expectation the losses are defined with.
        Draw order: N x n_groups timesteps, then the noise; for N = 1 that is one draw per group.
        """
        adapter, n_t = self.adapter, self.config.timesteps_per_sample
        t_all = adapter.sample_timesteps(n_groups * n_t, gen)
        noise_all = torch.randn((n_groups * n_t, *latents.shape[1:]), generator=gen)
        rows = torch.cat([torch.from_numpy(sample_group * n_t + r) for r in range(n_t)])
        index = torch.from_numpy(samples).repeat(n_t)
        x, y = latents[index.to(latents.device)], cond[index.to(cond.device)]
        t, noise = t_all[rows.to(t_all.device)], noise_all[rows]
        pol = adapter.per_sample_loss(x, noise, t, y).reshape(n_t, -1).mean(dim=0)
        ref = adapter.per_sample_loss(x, noise, t, y, reference=True).reshape(n_t, -1).mean(dim=0)
        return pol, ref

    def minibatch(self, demos, gen: torch.Generator) -> torch.Tensor:
        """Indices of the pairs (or KTO samples) of one update: all, or ``batch_size`` drawn from ``gen``.

        A KTO minibatch takes half its samples from each label, so both are in every batch.
        """
        size = self.config.batch_size
        order = torch.randperm(demos.size, generator=gen)
        if not size or size >= demos.size:
            return order
        if demos.pairs is not None:
            return order[:size]
        desirable = torch.from_numpy(demos.desirable)[order]
        good, bad = order[desirable], order[~desirable]
        n_good = min(good.numel(), max(1, size // 2), size - 1)
        n_bad = min(bad.numel(), size - n_good)
        n_good = min(good.numel(), size - n_bad)
        return torch.cat([good[:n_good], bad[:n_bad]])

    def evaluate_heldout(self) -> float:
        c, adapter = self.config, self.adapter
        prompts = list(self.prompts.heldout[: c.eval_prompts])
        seeds = round_seeds(c.seed, 10**6, len(prompts))
        with self.ema_weights():
            audio = adapter.decode(adapter.generate(prompts, seeds, steps=c.eval_steps, guidance=c.guidance))
        return self.reward.score(Batch(audio, adapter.sample_rate, prompts)).set_value()

    # -------------------------------------------------------------- state
    @contextlib.contextmanager
    def ema_weights(self) -> Iterator[None]:
        """Context: the policy holds the EMA weights inside (no-op without EMA)."""
        if self.ema is None:
            yield
            return
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, e in zip(self.params, self.ema, strict=True):
                p.copy_(e)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved, strict=True):
                    p.copy_(s)

    def checkpoint(self, rounds_done: int) -> Path:
        folder = save_state(self.run_dir, rounds_done, self.adapter, self.params, self.optimizer, self.ema,
                            {"updates": self.updates})
        prune(self.run_dir, self.config.keep_last)
        return folder

    def restore(self, folder: Path) -> int:
        record = load_state(folder, self.params, self.optimizer, self.ema)
        self.updates = int(record.get("updates", 0))
        return int(record["round"])

    def stop(self, r: int, why: str) -> None:
        """Stop on a non-finite loss: keep the weights as they are (before the bad step) beside the checkpoints."""
        folder = self.run_dir / "checkpoints" / f"stopped-round-{r + 1:06d}"
        tmp = folder.with_name(f".tmp-{folder.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.adapter.save(tmp, info={"finetune_round": r, "stopped": why})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        last = latest_checkpoint(self.run_dir)
        resume = f"the last good checkpoint {last} is untouched" if last else "no checkpoint was written before"
        raise FinetuneError(f"{self.run_dir}: {why}; stopped, the weights before that step are in {folder}; {resume}")


def run(config: RunConfig | None = None, run_dir: str | os.PathLike[str] = "run", *, resume: bool = False,
        overwrite: bool = False, rounds: int | None = None, log: Callable[[str], None] = lambda m: None,
        progress: bool = False, command: str | None = None, cache=None) -> dict[str, Any]:
    """Run (or resume) DRAGON fine-tuning; returns a summary (rounds done, final reward, where the model is).

    Parameters
    ----------
    config : RunConfig
        The run's options (ignored with ``resume``: the saved config.json is used).
    run_dir : path
        The run folder (see :mod:`finetune.checkpoint` for its layout).
    resume : bool
        Continue the run in ``run_dir`` from its newest checkpoint.
    overwrite : bool
        Delete whatever run ``run_dir`` holds and start afresh.
    rounds : int, optional
        With ``resume``: a new total number of rounds (to extend a finished run).
    """
    run_dir = Path(run_dir)
    saved_path = run_dir / "config.json"
    if resume:
        if not saved_path.is_file():
            raise InputError(f"{run_dir}: no run to resume (no config.json)")
        saved = json.loads(saved_path.read_text())
        config = RunConfig.from_dict(saved["config"], str(saved_path))
        if rounds is not None:
            config = dataclasses.replace(config, rounds=rounds)
    else:
        if config is None:
            raise InputError("config: needed to start a run")
        if saved_path.exists() or (run_dir / "checkpoints").exists():
            if not overwrite:
                raise InputError(f"{run_dir}: already holds a run; --resume it or pass --overwrite")
            shutil.rmtree(run_dir)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(config.seed)

    # Everything that can be wrong with the inputs fails here, before any generation or training.
    prompts = load_prompts(config.prompts, seed=config.seed, heldout=config.heldout_prompts,
                           heldout_size=config.heldout_size, column=config.prompt_column)
    reward = make_reward(config.reward, {"ref": config.ref, "encoder": config.encoder}, cache=cache)
    state = _Run(config, run_dir, reward, prompts, log)
    base = base_folder(config.model, config.checkpoint)
    base_hash = _weights_hash(base)

    start = 0
    if resume:
        recorded = saved.get("base_weights_sha256")
        if recorded and base_hash and recorded != base_hash:
            raise CheckpointError(f"{base}: the base weights changed since the run started (sha256 {base_hash[:12]} "
                                  f"!= {recorded[:12]}); the reference model would differ")
        folder = latest_checkpoint(run_dir)
        if folder is not None:
            start = state.restore(folder)
        state.records = [r for r in read_log(run_dir) if r["round"] <= start]
        log(f"resuming {run_dir} after round {start}")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(saved_path, {"config": config.to_dict(), "reward": reward.describe(), "splitter": state.splitter,
                                "base_checkpoint": None if base is None else str(base),
                                "base_weights_sha256": base_hash, "rewardkit": __version__, "torch": torch.__version__,
                                "threads": torch.get_num_threads(), "command": command,
                                "prompts": {"source": prompts.source, "train": len(prompts.train),
                                            "heldout": len(prompts.heldout)}})
        with atomic_write(run_dir / "heldout_prompts.txt") as f:
            f.write("".join(p + "\n" for p in prompts.heldout).encode())
        if config.eval_every:
            # Round 0: the base model on the held-out prompts, where the eval_reward curve starts.
            t0 = time.perf_counter()
            state.records.append({"round": 0, "eval_reward": state.evaluate_heldout(),
                                  "seconds_eval": time.perf_counter() - t0})
            _write_logs(run_dir, state.records)

    from tqdm.auto import tqdm

    bar = tqdm(total=config.rounds, initial=start, disable=not progress, unit="round", desc="dragon")
    began = time.monotonic()
    done = start
    for r in range(start, config.rounds):
        record = state.run_round(r)
        state.records.append(record)
        done = r + 1
        _write_logs(run_dir, state.records)
        bar.set_postfix(reward=f"{record['reward']:.4g}", acc=f"{record.get('accuracy', float('nan')):.2f}")
        bar.update()
        out_of_time = config.max_minutes and time.monotonic() - began >= 60 * config.max_minutes
        if (config.checkpoint_every and done % config.checkpoint_every == 0) or done == config.rounds or out_of_time:
            state.checkpoint(done)
        if out_of_time and done < config.rounds:
            log(f"{run_dir}: --max-minutes {config.max_minutes:g} reached after round {done} of {config.rounds}")
            break
    bar.close()
    final = run_dir / "final"
    with state.ema_weights():
        state.adapter.save(final, info={"finetune_run": str(run_dir), "rounds": done, "reward": config.reward,
                                        "command": command})
    trained = [r for r in state.records if r["round"] > 0]
    return {"run": str(run_dir), "rounds": done, "final": str(final),
            "reward": trained[-1]["reward"] if trained else None,
            "first_reward": trained[0]["reward"] if trained else None}
