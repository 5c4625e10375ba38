"""``finetune plot``: training curves of a run as one PNG (reward, loss, implicit accuracy, KL proxy, MSEs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rewardkit._fileio import atomic_write
from rewardkit.errors import InputError

from .loop import read_log

__all__ = ["plot_run"]

PANELS = [("reward", ("reward", "eval_reward"), "reward (round batch; held-out if logged)"),
          ("loss", ("loss",), "DPO/KTO loss"),
          ("accuracy", ("accuracy",), "implicit accuracy"),
          ("kl", ("kl_proxy",), "KL proxy: mean |policy MSE - reference MSE|"),
          ("mse", ("policy_mse", "reference_mse"), "denoising MSE"),
          ("grad", ("grad_norm",), "gradient norm (before clipping)")]


def plot_run(run_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """Write the curves of ``run_dir``'s log.jsonl to ``output`` (default ``RUN/curves.png``); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_log(run_dir)
    if not records:
        raise InputError(f"{run_dir}: has no logged rounds (log.jsonl missing or empty)")
    try:
        title = json.loads((run_dir / "config.json").read_text())["config"]["reward"]
    except (OSError, ValueError, KeyError):
        title = str(run_dir)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for ax, (_, keys, label) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            points = [(r["round"], r[key]) for r in records if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="." if len(points) < 40 else None, label=key)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("round")
        if len(keys) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"DRAGON run {run_dir.name}: {title}")
    path = Path(output) if output else run_dir / "curves.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
