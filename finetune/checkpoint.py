"""Run checkpoints: model, optimiser, EMA and RNG state in safetensors + JSON, written atomically.

Layout of a run folder::

    RUN/config.json                    the full run configuration (written once, at the start)
    RUN/log.jsonl, RUN/log.csv         one record per finished round
    RUN/checkpoints/round-000012/      model.safetensors + config.json (the adapter's format),
                                       state.safetensors (optimiser moments, EMA, RNG), state.json
    RUN/checkpoints/LATEST             name of the newest complete checkpoint
    RUN/final/                         the fine-tuned model when the run ends (EMA weights if enabled)

A checkpoint folder is written under a temporary name and renamed into
place, and ``LATEST`` is replaced only after that, so an interrupted write
never leaves a half checkpoint that resume would trust. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from rewardkit._fileio import atomic_write

from .adapter import CheckpointError

__all__ = ["latest_checkpoint", "load_state", "prune", "save_state", "write_json"]

LATEST = "LATEST"


def write_json(path: Path, record: Any) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                       record: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in record["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": record["param_groups"]})


def save_state(run_dir: Path, round_index: int, adapter, params: list[torch.Tensor],
               optimizer: torch.optim.Optimizer, ema: list[torch.Tensor] | None, extra: dict[str, Any]) -> Path:
    """Write the checkpoint after ``round_index`` rounds; returns its folder.

    The trainable parameters themselves (all weights, or the LoRA matrices)
    go into state.safetensors, which is what resume restores; the model
    folder beside them is for ``finetune sample`` / ``eval --checkpoint``.
    """
    from safetensors.torch import save

    folder = run_dir / "checkpoints" / f"round-{round_index:06d}"
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    adapter.save(tmp, info={"finetune_round": round_index})
    tensors, record = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    for i, p in enumerate(params):
        tensors[f"param.{i}"] = p.detach().cpu().contiguous()
    for i, t in enumerate(ema or []):
        tensors[f"ema.{i}"] = t.detach().cpu().contiguous()
    with atomic_write(tmp / "state.safetensors") as f:
        f.write(save(tensors, metadata={"format": "pt"}))
    write_json(tmp / "state.json", {"round": round_index, "optimizer": record, "ema": ema is not None, **extra})
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    with atomic_write(run_dir / "checkpoints" / LATEST) as f:
        f.write((folder.name + "\n").encode())
    return folder


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    folder = run_dir / "checkpoints" / pointer.read_text().strip()
    if not (folder / "state.json").is_file():
        raise CheckpointError(f"{pointer}: names {folder.name}, which is missing or incomplete")
    return folder


def load_state(folder: Path, params: list[torch.Tensor], optimizer: torch.optim.Optimizer,
               ema: list[torch.Tensor] | None) -> dict[str, Any]:
    """Restore parameters, optimiser, EMA and the torch RNG from ``folder``; returns state.json (round, extras)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        record = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "state.safetensors"))
        saved = [tensors.get(f"param.{i}") for i in range(len(params))]
        misfit = any(t is None or t.shape != p.shape for t, p in zip(saved, params, strict=True))
        if misfit or f"param.{len(params)}" in tensors:
            raise ValueError("its parameters do not fit this run's model (another model, or LoRA vs full?)")
        with torch.no_grad():
            for p, t in zip(params, saved, strict=True):
                p.copy_(t.to(p.device))
        _restore_optimizer(optimizer, tensors, record["optimizer"])
    except (OSError, ValueError, KeyError, SafetensorError, RuntimeError) as exc:
        raise CheckpointError(f"{folder}: unusable run state ({exc})") from None
    if ema is not None:
        if not record.get("ema"):
            raise CheckpointError(f"{folder}: was saved without EMA weights, but this run uses EMA")
        for i, t in enumerate(ema):
            t.copy_(tensors[f"ema.{i}"])
    torch.set_rng_state(tensors["rng.torch"])
    return record


def prune(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` round checkpoints (never the one LATEST names)."""
    if keep_last <= 0:
        return
    folders = sorted(p for p in (run_dir / "checkpoints").glob("round-*") if p.is_dir())
    latest = latest_checkpoint(run_dir)
    for old in folders[:-keep_last]:
        if latest is None or old.name != latest.name:
            shutil.rmtree(old, ignore_errors=True)
