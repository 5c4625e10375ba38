"""What every encoder is: a fixed preprocessing contract plus a batched forward pass.

An encoder turns mono audio at its own ``sample_rate`` into frame embeddings.
The audio of a file is cut into windows of ``window`` samples every ``hop``
samples (see :func:`rewardkit.audio.frame_windows`); :meth:`Encoder.embed_windows`
maps a batch of windows to ``frames_per_window`` embeddings each. A file's
embedding matrix is the concatenation over its windows, ``(n_frames, dim)``.

Windows of many files are batched into one forward pass. Nothing in an
encoder is random at inference time.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InputError

PAD_MODES = ("repeat", "repeatpad", "zero")


@dataclass(frozen=True)
class Windowing:
    """How a file's audio is cut into encoder windows, in samples at the encoder's rate.

    ``pad`` says what fills a clip shorter than one window: ``"repeat"``
    (tile the clip to the full window), ``"repeatpad"`` (repeat it a whole
    number of times, then zeros: laion-clap's ``repeatpad``) or ``"zero"``. Clips longer than a window
    get full windows every ``hop`` samples, plus one last window aligned to
    the end of the clip when the hops leave a tail uncovered, so every
    sample is seen and no window is padded.
    """

    window: int
    hop: int
    pad: str = "repeat"

    def __post_init__(self):
        if self.window < 1 or self.hop < 1:
            raise InputError(f"windowing: window and hop must be >= 1 sample, got {self.window}, {self.hop}")
        if self.pad not in PAD_MODES:
            raise InputError(f"pad: expected one of {', '.join(map(repr, PAD_MODES))}, got {self.pad!r}")


@dataclass(frozen=True)
class EncoderInfo:
    """The declared, serialisable facts about an encoder (reported with every score)."""

    name: str
    sample_rate: int
    windowing: Windowing
    dim: int
    modalities: tuple[str, ...]
    frames_per_window: int
    fingerprint: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Encoder(abc.ABC):
    """Base class of audio (and optionally text) encoders.

    Subclasses set :attr:`name`, :attr:`sample_rate`, :attr:`windowing`,
    :attr:`dim`, :attr:`modalities`, :attr:`frames_per_window` and
    :attr:`requested_device`, implement :meth:`embed_windows`, and describe what
    determines their output in :meth:`fingerprint_parts` (weights hash,
    preprocessing parameters). The fingerprint keys the cache and is stored
    in reference stats, so two encoders that could produce different
    embeddings must never share one. Building an encoder should be cheap:
    load weights on first use (the fingerprint must not need them loaded),
    so a run whose embeddings are all cached never builds a network.
    """

    name: str
    sample_rate: int
    windowing: Windowing
    dim: int
    modalities: tuple[str, ...] = ("audio",)
    frames_per_window: int = 1
    #: The device asked for (None: CUDA when available, else CPU), resolved on first use.
    requested_device: str | None = None
    #: Windows per forward pass.
    batch_size: int = 32
    #: Bump when the encoder's code changes its output.
    code_version: str = "1"

    @abc.abstractmethod
    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """Embed a batch of windows.

        Parameters
        ----------
        windows : np.ndarray [shape=(b, window)], float32
            Mono audio at :attr:`sample_rate`, in [-1, 1].

        Returns
        -------
        np.ndarray [shape=(b, frames_per_window, dim)], float32
        """

    @functools.cached_property
    def device(self) -> str:
        """The torch device inference runs on (resolving it imports torch, so it waits for first use)."""
        return pick_device(self.requested_device)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Embed texts into the audio embedding space [shape=(len(texts), dim)] (cross-modal encoders)."""
        raise InputError(f"encoder {self.name!r}: has no text tower (modalities: {', '.join(self.modalities)})")

    @abc.abstractmethod
    def fingerprint_parts(self) -> dict[str, Any]:
        """JSON-serialisable facts that determine the output: weights hash, preprocessing options."""

    def fingerprint(self) -> str:
        """``name:hash`` of everything that determines this encoder's embeddings."""
        parts = {"name": self.name, "code_version": self.code_version, "rewardkit": _major_minor(),
                 "sample_rate": self.sample_rate, "windowing": asdict(self.windowing), "dim": self.dim,
                 "frames_per_window": self.frames_per_window, **self.fingerprint_parts()}
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.name}:{digest}"

    def info(self) -> EncoderInfo:
        return EncoderInfo(self.name, self.sample_rate, self.windowing, self.dim, tuple(self.modalities),
                           self.frames_per_window, self.fingerprint(), dict(self.fingerprint_parts()))

    def embed_batched(self, windows: np.ndarray) -> np.ndarray:
        """:meth:`embed_windows` over any number of windows, :attr:`batch_size` at a time."""
        out = [self.embed_windows(windows[s:s + self.batch_size])
               for s in range(0, windows.shape[0], self.batch_size)]
        if not out:
            return np.zeros((0, self.frames_per_window, self.dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def _major_minor() -> str:
    return ".".join(__version__.split(".")[:2])


def hash_state_dict(tensors: Iterable[tuple[str, Any]]) -> str:
    """sha256 over named tensors (names, shapes, dtypes and bytes) in name order: a weights fingerprint."""
    h = hashlib.sha256()
    for name, t in sorted(tensors, key=lambda kv: kv[0]):
        arr = t.detach().cpu().contiguous().numpy() if hasattr(t, "detach") else np.ascontiguousarray(t)
        h.update(name.encode())
        h.update(str((arr.shape, str(arr.dtype))).encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


def pick_device(device: str | None) -> str:
    """``device`` if given, else ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
