"""The encoder registry: names to factories, built on first use.

>>> from rewardkit import encoders
>>> encoders.names()           # lists, builds nothing
['clap', 'crepe', 'mel', 'synthclap']
>>> enc = encoders.get("mel")  # builds one

Third-party packages add encoders through the ``rewardkit.encoders`` entry
point group, ``name = "package.module:Factory"``; the factory is called with
the options given to :func:`get` and must return an :class:`Encoder`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import metadata
from typing import Any

from ..errors import InputError, RewardkitError
from .base import Encoder, EncoderInfo, Windowing

__all__ = ["Encoder", "EncoderInfo", "Windowing", "get", "list", "names", "register"]

ENTRY_POINT_GROUP = "rewardkit.encoders"

_BUILTIN: dict[str, str] = {
    "mel": "rewardkit.encoders.mel:MelEncoder",
    "crepe": "rewardkit.encoders.crepe:CrepeEncoder",
    "clap": "rewardkit.encoders.clap:ClapEncoder",
    "synthclap": "rewardkit.encoders.synthclap:SynthClapEncoder",
}
_REGISTERED: dict[str, Callable[..., Encoder] | str] = {}


def register(name: str, factory: Callable[..., Encoder] | str) -> None:
    """Register ``factory`` (a callable, or a lazy ``"module:attr"`` string) under ``name``."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise InputError(f"name: encoder names are letters, digits, '-' and '_', got {name!r}")
    _REGISTERED[name] = factory


def _entry_points() -> dict[str, str]:
    try:
        return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken third-party distribution must not break the registry
        return {}


def _all() -> dict[str, Callable[..., Encoder] | str]:
    return {**_entry_points(), **_BUILTIN, **_REGISTERED}


def names() -> list[str]:
    """Registered encoder names, sorted; no encoder is built or imported."""
    return sorted(_all())


def get(name: str, **options: Any) -> Encoder:
    """Build the encoder registered as ``name`` with ``options``."""
    table = _all()
    if name not in table:
        raise InputError(f"encoder: unknown name {name!r}; known: {', '.join(sorted(table))}")
    factory = table[name]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise RewardkitError(f"encoder {name!r}: cannot load {factory!r} ({exc})") from exc
    try:
        encoder = factory(**options)
    except TypeError as exc:
        raise InputError(f"encoder {name!r}: bad options {sorted(options)} ({exc})") from None
    if not isinstance(encoder, Encoder):
        raise RewardkitError(f"encoder {name!r}: factory returned {type(encoder).__name__}, not an Encoder")
    return encoder


#: ``rewardkit.encoders.list()``: the same as :func:`names`.
list = names  # the registry's public name (shadows the builtin here only; nothing below uses it)
