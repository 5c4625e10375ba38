"""Built-in diffusion models with their adapters (see :mod:`finetune.adapter`).

Importing this package builds nothing; each model module imports torch itself.
"""

from __future__ import annotations

__all__ = ["TinyDiffusion"]


def __getattr__(name: str):
    # Lazy: `finetune --help` and rewardkit-only code never pay for importing torch here.
    if name == "TinyDiffusion":
        from .tiny_diffusion import TinyDiffusion

        return TinyDiffusion
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
