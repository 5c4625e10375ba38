"""Reward spec strings: ``rewardkit:fad?ref=exemplars/``, weighted sums, and users' own callables.

Grammar::

    spec  := term ("+" term)*
    term  := [weight "*"] atom
    atom  := "rewardkit:" NAME ["?" options]        a built-in reward (builtin.py)
           | MODULE ":" ATTR ["?" options]          a user's reward
    options := key=value ("&" key=value)*           URL query syntax

Options of the built-in rewards (spec options win over the defaults a
caller passes, e.g. the ``--ref`` and ``--encoder`` flags):

* ``encoder`` (default ``synthclap``) and ``encoder.KEY=VALUE`` for the
  encoder's own options (``encoder.weights=...`` for synthclap,
  ``encoder.ckpt=...`` for clap);
* ``ref``: an audio folder, a ``.npz`` stats file (``rewardkit ref build``)
  or a captions file (``.txt``/``.csv``, text-audio encoders only), for
  ``fad``, ``kad``, ``per_song_fad`` and ``similarity``;
* ``q`` (vendi order), ``stat`` (similarity: ``mean`` or ``max``),
  ``head`` (aesthetics head file).

A user's ``MODULE:ATTR`` may be a :class:`Reward` instance, a ``Reward``
subclass or factory (called with the options as keyword arguments), or a
plain function ``f(audio, sample_rate, prompts) -> per-clip values``
(higher is better), which becomes an instance reward.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from .. import encoders
from ..cache import EmbeddingCache
from ..errors import InputError
from ..reference import Reference, build_reference
from . import builtin
from .base import DISTRIBUTION, INSTANCE, INSTANCE_TO_DISTRIBUTION, KINDS, Batch, EmbeddingMemo, Reward, Scored, finite

__all__ = ["BUILTIN", "FunctionReward", "WeightedSum", "make_reward", "make_rewards", "split_specs"]

#: name -> (class, options it takes besides encoder options, needs a reference)
BUILTIN: dict[str, tuple[type[Reward], tuple[str, ...], bool]] = {
    "fad": (builtin.FadReward, (), True),
    "kad": (builtin.KadReward, (), True),
    "vendi": (builtin.VendiReward, ("q",), False),
    "per_song_fad": (builtin.PerSongFadReward, (), True),
    "similarity": (builtin.SimilarityReward, ("stat",), True),
    "clap_score": (builtin.ClapScoreReward, (), False),
    "aesthetics": (builtin.AestheticsReward, ("head",), False),
}
DEFAULT_ENCODER = "synthclap"
_SUM_SPLIT = re.compile(r"\+(?=\s*(?:[0-9.]+(?:[eE][-+]?\d+)?\s*\*\s*)?[A-Za-z_][\w.]*:)")
_TERM = re.compile(r"^\s*(?:(?P<weight>[-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*\*\s*)?(?P<atom>\S.*?)\s*$")


class WeightedSum(Reward):
    """``sum_k w_k R_k``: per-clip values and set values are the weighted sums of the terms'."""

    def __init__(self, terms: list[tuple[float, Reward]]):
        if not terms:
            raise InputError("reward: empty sum")
        self.terms = terms
        self.name = "+".join(r.name if w == 1 else f"{w:g}*{r.name}" for w, r in terms)
        kinds = {r.kind for _, r in terms}
        self.kind = next(k for k in (DISTRIBUTION, INSTANCE_TO_DISTRIBUTION, INSTANCE) if k in kinds)
        self.min_set = max(r.min_set for _, r in terms)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "terms": [{"weight": w, **r.describe()} for w, r in self.terms]}

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        memo = memo or EmbeddingMemo()
        parts = [(w, r.score(batch, memo)) for w, r in self.terms]
        values = sum(w * s.values for w, s in parts)
        return Scored(self.name, self.kind, values, lambda idx: sum(w * s.set_value(idx) for w, s in parts))


class FunctionReward(Reward):
    """A user's function ``f(audio, sample_rate, prompts) -> values`` as an instance reward."""

    def __init__(self, fn, name: str, kind: str = INSTANCE):
        if kind == DISTRIBUTION:
            raise InputError(f"{name}: a plain function can only be an instance reward; subclass Reward for a "
                             "distribution reward")
        if kind not in KINDS:
            raise InputError(f"{name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.fn, self.name, self.kind = fn, name, kind

    def score(self, batch: Batch, memo: EmbeddingMemo | None = None) -> Scored:
        values = finite(self.fn(list(batch.audio), batch.sample_rate, list(batch.prompts)), self.name)
        if values.shape[0] != len(batch.audio):
            raise InputError(f"{self.name}: returned {values.shape[0]} values for {len(batch.audio)} clips")
        return Scored(self.name, self.kind, values)


def split_specs(text: str) -> list[str]:
    """A comma-separated list of specs (commas inside a spec's options are not allowed)."""
    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        raise InputError("rewards: no reward spec given")
    return specs


def make_rewards(text: str, defaults: Mapping[str, Any] | None = None, *,
                 cache: EmbeddingCache | None = None) -> list[Reward]:
    """Each reward of a comma-separated list, built by :func:`make_reward` with shared encoders and references."""
    shared = _Shared(cache)
    return [make_reward(s, defaults, _shared=shared) for s in split_specs(text)]


def make_reward(spec: str, defaults: Mapping[str, Any] | None = None, *, cache: EmbeddingCache | None = None,
                _shared: _Shared | None = None) -> Reward:
    """The reward a spec string names, with its encoder and reference built (see the module docstring).

    Parameters
    ----------
    spec : str
        E.g. ``"rewardkit:fad?ref=exemplars/"``, ``"0.7*rewardkit:clap_score+0.3*rewardkit:aesthetics"``,
        ``"mypkg.rewards:brightness"``.
    defaults : mapping, optional
        Options used where the spec does not give them (``ref``, ``encoder``...).
        Options a reward does not take are ignored when they come from here.
    cache : EmbeddingCache, optional
        Where reference folders' embeddings are cached (default: the user cache).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("reward: empty spec")
    shared = _shared or _Shared(cache)
    terms = [t for t in _SUM_SPLIT.split(spec) if t.strip()]
    built: list[tuple[float, Reward]] = []
    for term in terms:
        m = _TERM.match(term)
        weight = float(m.group("weight")) if m and m.group("weight") else 1.0
        if not np.isfinite(weight):
            raise InputError(f"reward {spec!r}: weight {weight} is not finite")
        built.append((weight, _atom(m.group("atom") if m else term.strip(), dict(defaults or {}), shared)))
    if len(built) == 1 and built[0][0] == 1.0:
        return built[0][1]
    return WeightedSum(built)


class _Shared:
    """Encoders and references built once per resolution, so several rewards share them."""

    def __init__(self, cache: EmbeddingCache | None):
        self.cache = cache
        self.encoders: dict[tuple, encoders.Encoder] = {}
        self.references: dict[tuple, Reference] = {}

    def encoder(self, name: str, options: dict[str, Any]) -> encoders.Encoder:
        key = (name, tuple(sorted(options.items())))
        if key not in self.encoders:
            self.encoders[key] = encoders.get(name, **options)
        return self.encoders[key]

    def reference(self, ref: str, encoder: encoders.Encoder) -> Reference:
        key = (str(ref), encoder.fingerprint())
        if key not in self.references:
            cache = self.cache if self.cache is not None else EmbeddingCache()
            self.references[key] = build_reference(ref, encoder, cache=cache)
        return self.references[key]


def _parse_value(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def _atom(atom: str, defaults: dict[str, Any], shared: _Shared) -> Reward:
    target, _, query = atom.partition("?")
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise InputError(f"reward {atom!r}: expected 'rewardkit:NAME' or 'module:callable'")
    try:
        given = {k: _parse_value(v) for k, v in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))}
    except ValueError:
        raise InputError(f"reward {atom!r}: options must be key=value pairs joined by '&'") from None
    if module == "rewardkit":
        return _builtin(attr, given, defaults, shared, atom)
    return _user(module, attr, given, atom)


def _builtin(name: str, given: dict[str, Any], defaults: dict[str, Any], shared: _Shared, atom: str) -> Reward:
    if name not in BUILTIN:
        raise InputError(f"reward {atom!r}: unknown rewardkit reward {name!r}; known: {', '.join(sorted(BUILTIN))}")
    cls, own, needs_ref = BUILTIN[name]
    allowed = {"encoder", *own} | ({"ref"} if needs_ref else set())
    unknown = [k for k in given if k not in allowed and not k.startswith("encoder.")]
    if unknown:
        raise InputError(f"reward {atom!r}: unknown option {unknown[0]!r}; {name} takes "
                         f"{', '.join(sorted(allowed))} and encoder.KEY")
    options = {k: v for k, v in defaults.items() if v is not None and (k in allowed or k.startswith("encoder."))}
    options.update(given)
    enc_name = str(options.pop("encoder", DEFAULT_ENCODER))
    enc_options = {k.split(".", 1)[1]: options.pop(k) for k in list(options) if k.startswith("encoder.")}
    encoder = shared.encoder(enc_name, enc_options)
    kwargs = {k: options[k] for k in own if k in options}
    if needs_ref:
        ref = options.get("ref")
        if ref in (None, ""):
            raise InputError(f"reward {atom!r}: {name} needs a reference set (ref=PATH in the spec, or --ref)")
        kwargs["reference"] = shared.reference(str(ref), encoder)
    return cls(encoder, **kwargs)


def _user(module: str, attr: str, given: dict[str, Any], atom: str) -> Reward:
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise InputError(f"reward {atom!r}: cannot import module {module!r} ({exc})") from None
    except AttributeError:
        raise InputError(f"reward {atom!r}: module {module!r} has no attribute {attr!r}") from None
    if isinstance(obj, Reward):
        if given:
            raise InputError(f"reward {atom!r}: {attr} is a ready-made reward and takes no options")
        return obj
    if not callable(obj):
        raise InputError(f"reward {atom!r}: {module}.{attr} is not callable")
    params = inspect.signature(obj).parameters if not inspect.isclass(obj) else {}
    if "audio" in params:
        kind = str(given.pop("kind", INSTANCE))
        if given:
            raise InputError(f"reward {atom!r}: a scoring function takes only the option 'kind'")
        return FunctionReward(obj, attr, kind)
    try:
        reward = obj(**given)
    except TypeError as exc:
        raise InputError(f"reward {atom!r}: bad options {sorted(given)} ({exc})") from None
    if not isinstance(reward, Reward):
        raise InputError(f"reward {atom!r}: {module}.{attr}(...) returned {type(reward).__name__}, not a Reward")
    return reward
