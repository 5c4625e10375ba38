"""Diffusion models with their adapters (see :mod:`finetune.adapter`), by name.

``tiny_diffusion`` is built in; any ``module:Class`` whose class has a
``load(folder, device)`` classmethod returning a :class:`~finetune.adapter.DiffusionAdapter`
works too. Importing this package builds nothing; each model module imports torch itself.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rewardkit.errors import InputError

__all__ = ["BUILTIN_MODELS", "TinyDiffusion", "base_folder", "load_model", "model_class"]

BUILTIN_MODELS = {"tiny_diffusion": "finetune.models.tiny_diffusion:TinyDiffusion"}


def model_class(name: str):
    """The adapter class registered as ``name``, or named ``module:Class``."""
    target = BUILTIN_MODELS.get(name, name)
    module, sep, attr = target.partition(":")
    if not sep:
        raise InputError(f"model: unknown {name!r}; built in: {', '.join(BUILTIN_MODELS)}, or give module:Class")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"model: cannot load {target!r} ({exc})") from None
    if not callable(getattr(cls, "load", None)):
        raise InputError(f"model: {target!r} has no load(folder, device) classmethod")
    return cls


def load_model(name: str, checkpoint: str | None, device: str = "cpu"):
    """Load ``name`` from ``checkpoint`` (None: the checkpoint the model ships, when it ships one)."""
    return model_class(name).load(checkpoint, device=device)


def base_folder(name: str, checkpoint: str | None) -> Path | None:
    """The folder :func:`load_model` loads ``name`` from: ``checkpoint``, else the model's shipped one (or None)."""
    if checkpoint:
        return Path(checkpoint).expanduser()
    return getattr(model_class(name), "default_checkpoint", None)


def __getattr__(name: str):
    # Lazy: `finetune --help` and rewardkit-only code never pay for importing torch here.
    if name == "TinyDiffusion":
        from .tiny_diffusion import TinyDiffusion

        return TinyDiffusion
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
