"""``finetune eval``: the fine-tuned model against its base on held-out prompts, same seeds, per reward.

Both models generate ``samples_per_prompt`` clips for every held-out prompt
from the same seeds, and every reward scores both batches. For each reward:

* ``before`` / ``after``: the reward of the whole base / fine-tuned batch
  (mean per-clip value, or the set metric);
* per-clip rewards (instance and instance-to-distribution): the win rate is
  the share of prompts whose mean value went up (a tie counts one half),
  with a Wilson 95% interval over prompts;
* set rewards (distribution): ``bootstrap`` resamples of the prompts (with
  replacement, the same draw for both models); the win rate is the share of
  resamples in which the fine-tuned set scores higher. Resamples are not
  independent, so no binomial interval is given for it; its uncertainty is
  the 95% percentile interval of the difference (``delta_lo``, ``delta_hi``),
  which is also given for per-clip rewards (bootstrap over prompts).

The rewards a run optimised are always evaluated, with the others the user
asks for: reward hacking shows up as a win on the target and losses elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit._fileio import atomic_write
from rewardkit.errors import InputError
from rewardkit.rewards import DISTRIBUTION, Batch, EmbeddingMemo, make_rewards, split_specs

from .generations import GenerationCache, model_digest
from .models import base_folder, load_model, model_class
from .prompts import read_prompt_file

__all__ = ["DEFAULT_EVAL_REWARDS", "evaluate", "wilson_interval"]

#: Rewards evaluated besides the optimised one (those needing a reference only when the run has one).
DEFAULT_EVAL_REWARDS = ("rewardkit:clap_score", "rewardkit:aesthetics", "rewardkit:vendi", "rewardkit:fad",
                        "rewardkit:per_song_fad")
EVAL_SEED_ROUND = 2**20


def wilson_interval(wins: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion ``wins / n``."""
    if n == 0:
        return float("nan"), float("nan")
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _reward_specs(requested: str | None, run_config: dict[str, Any]) -> list[str]:
    target = run_config["reward"]
    has_ref = bool(run_config.get("ref"))
    if requested:
        specs = split_specs(requested)
    else:
        specs = [s for s in DEFAULT_EVAL_REWARDS if has_ref or s not in ("rewardkit:fad", "rewardkit:per_song_fad")]
    return list(dict.fromkeys([target, *specs]))


def evaluate(run_dir: str | os.PathLike[str], *, rewards: str | None = None, prompts: str | None = None,
             samples_per_prompt: int = 2, steps: int | None = None, seed: int = 0, bootstrap: int = 1000,
             checkpoint: str | None = None, device: str | None = None, output: str | os.PathLike[str] | None = None,
             cache=None, cache_base: bool = True, base_cache: GenerationCache | None = None, log=lambda m: None):
    """Evaluate a run (see the module docstring); returns a pandas DataFrame, one row per reward.

    Parameters
    ----------
    run_dir : path
        A ``finetune run`` folder; its ``final/`` model is compared with its base model.
    rewards : str, optional
        Comma-separated reward specs (default: :data:`DEFAULT_EVAL_REWARDS`); the run's own reward is added.
    prompts : path, optional
        Held-out prompts file (default: the run's ``heldout_prompts.txt``).
    checkpoint : path, optional
        Evaluate this model folder instead of ``final/`` (e.g. ``RUN/checkpoints/round-000010``).
    output : path, optional
        Also write ``eval.json`` and ``eval.csv`` there (default: ``RUN/eval``).
    cache : EmbeddingCache, optional
        The rewards' embedding cache (reference sets).
    cache_base, base_cache : bool, GenerationCache
        Take the base model's clips from (and store them in) a :class:`~finetune.generations.GenerationCache`
        (default location: :func:`~finetune.generations.default_dir`); every run from one base shares them.
    """
    import pandas as pd

    run_dir = Path(run_dir)
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        config = saved["config"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{run_dir}: not a finetune run folder ({exc})") from None
    if samples_per_prompt < 1 or bootstrap < 10:
        raise InputError("samples-per-prompt must be >= 1 and bootstrap >= 10")
    prompt_file = Path(prompts) if prompts else run_dir / "heldout_prompts.txt"
    prompt_list = read_prompt_file(prompt_file)
    specs = _reward_specs(rewards, config)
    # One resolution for all specs, so rewards on the same encoder and reference share them.
    built = make_rewards(",".join(specs), {"ref": config.get("ref"), "encoder": config.get("encoder")}, cache=cache)
    tuned_folder = Path(checkpoint) if checkpoint else run_dir / "final"
    if not tuned_folder.is_dir():
        raise InputError(f"{tuned_folder}: no fine-tuned model (has the run finished?)")
    device = device or config.get("device", "cpu")
    steps = int(steps or config.get("eval_steps", 20))

    batch_prompts = [p for p in prompt_list for _ in range(samples_per_prompt)]
    from .loop import round_seeds

    seeds = round_seeds(seed, EVAL_SEED_ROUND, len(batch_prompts))
    guidance = config.get("guidance", 3.0)
    batches = {}
    if cache_base:
        base_cache = base_cache or GenerationCache()
        digest = model_digest(base_folder(config["model"], config.get("checkpoint")))
        key = digest and base_cache.key(config["model"], digest, batch_prompts, seeds, steps, guidance, device)
        hit = base_cache.get(key, len(batch_prompts)) if key else None
        if hit is not None:
            log(f"base model clips from the cache ({base_cache.root})")
            batches["base"] = Batch(list(hit[0]), hit[1], batch_prompts)
    for label in ("base", "tuned"):
        if label in batches:
            continue
        model = (load_model(config["model"], config.get("checkpoint"), device=device) if label == "base"
                 else model_class(config["model"]).load(tuned_folder, device=device))
        log(f"generating {len(batch_prompts)} clips with the {label} model ({steps} steps)")
        audio = model.decode(model.generate(batch_prompts, seeds, steps=steps, guidance=guidance))
        batches[label] = Batch(audio, model.sample_rate, batch_prompts)
        if label == "base" and cache_base and key and len({len(a) for a in audio}) == 1:
            base_cache.put(key, np.stack(audio), model.sample_rate)
        del model
    memos = {label: EmbeddingMemo() for label in batches}

    groups = np.repeat(np.arange(len(prompt_list)), samples_per_prompt)
    members = [np.nonzero(groups == g)[0] for g in range(len(prompt_list))]
    rng = np.random.default_rng([seed, 3])
    draws = rng.integers(0, len(prompt_list), size=(bootstrap, len(prompt_list)))
    rows = []
    for spec, reward in zip(specs, built, strict=True):
        log(f"scoring {reward.name}")
        before = reward.score(batches["base"], memos["base"])
        after = reward.score(batches["tuned"], memos["tuned"])
        row: dict[str, Any] = {"reward": reward.name, "spec": spec, "kind": reward.kind,
                               "optimised": spec == config["reward"], "before": before.set_value(),
                               "after": after.set_value()}
        row["delta"] = row["after"] - row["before"]
        if reward.kind == DISTRIBUTION:
            idx = [np.concatenate([members[g] for g in draw]) for draw in draws]
            deltas = np.array([after.set_value(i) - before.set_value(i) for i in idx])
            row["win_rate"] = float(np.mean(deltas > 0) + 0.5 * np.mean(deltas == 0))
            row["win_lo"], row["win_hi"] = float("nan"), float("nan")
            row["n"], row["unit"] = bootstrap, "bootstrap sets"
        else:
            b = np.array([before.values[m].mean() for m in members])
            a = np.array([after.values[m].mean() for m in members])
            wins = float(np.sum(a > b) + 0.5 * np.sum(a == b))
            row["win_rate"] = wins / len(members)
            row["win_lo"], row["win_hi"] = wilson_interval(wins, len(members))
            deltas = (a - b)[draws].mean(axis=1)
            row["n"], row["unit"] = len(members), "prompts"
        row["delta_lo"], row["delta_hi"] = (float(v) for v in np.percentile(deltas, [2.5, 97.5]))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["reward", "kind", "optimised", "before", "after", "delta", "delta_lo",
                                        "delta_hi", "win_rate", "win_lo", "win_hi", "n", "unit", "spec"])
    out = Path(output) if output else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    record = {"run": str(run_dir), "model": str(tuned_folder), "prompts": str(prompt_file),
              "prompts_count": len(prompt_list), "samples_per_prompt": samples_per_prompt, "steps": steps,
              "seed": seed, "bootstrap": bootstrap, "guidance": guidance,
              "rewards": json.loads(frame.to_json(orient="records"))}
    with atomic_write(out / "eval.json") as f:
        f.write((json.dumps(record, indent=2) + "\n").encode())
    with atomic_write(out / "eval.csv") as f:
        f.write(frame.to_csv(index=False).encode())
    return frame.set_index("reward")
