"""Reference sets: what generated audio is compared with.

A reference is built from an audio directory (frames and clip embeddings), a
caption file (text embeddings of a cross-modal encoder such as CLAP), or
loaded from a stats file written by :meth:`Reference.save`. It always
carries the fingerprint of the encoder that made it, and refuses to be used
with another.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import LoadOptions
from .cache import EmbeddingCache
from .embedding import EmbeddingSet, embed_directory
from .encoders.base import Encoder
from .errors import InputError, StatsFileError
from .stats import GaussianStats

TEXT_SUFFIXES = (".txt", ".csv", ".tsv")


@dataclass
class Reference:
    """Reference frame statistics, plus one embedding per item when known.

    ``items`` [shape=(n, dim)] are clip embeddings (audio) or caption
    embeddings (text); the kernel distance and set similarity need them,
    the Frechet distances need only ``stats``.
    """

    stats: GaussianStats
    items: np.ndarray | None
    kind: str            # "audio" | "text"
    source: str

    @property
    def encoder(self) -> str | None:
        return self.stats.encoder

    def check_encoder(self, fingerprint: str) -> None:
        if self.encoder and self.encoder != fingerprint:
            raise InputError(f"{self.source}: reference built with encoder {self.encoder}, but scoring uses "
                             f"{fingerprint}; rebuild the reference with this encoder")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write stats (and the item embeddings, float32) to ``path`` atomically."""
        info = {**self.stats.info, "kind": self.kind, "source": self.source}
        stats = self.stats.copy()
        stats.info = info
        extra = {} if self.items is None else {"items": self.items.astype(np.float32)}
        stats.save(path, extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Reference:
        stats = GaussianStats.load(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                items = z["items"].astype(np.float64) if "items" in z.files else None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise StatsFileError(f"{path}: cannot read its item embeddings ({exc})") from None
        if items is not None and (items.ndim != 2 or items.shape[1] != stats.dim or not np.isfinite(items).all()):
            raise StatsFileError(f"{path}: item embeddings have shape {items.shape}, expected (n, {stats.dim})")
        return cls(stats, items, stats.info.get("kind", "audio"), os.fspath(path))


def read_captions(path: str | os.PathLike[str]) -> list[str]:
    """Captions, one per non-empty line (a .csv/.tsv uses its ``caption`` or ``prompt`` column)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            import pandas as pd

            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str)
            column = next((c for c in ("caption", "prompt", "text") if c in frame.columns), None)
            if column is None:
                raise InputError(f"{path}: needs a 'caption', 'prompt' or 'text' column, has {list(frame.columns)}")
            lines = [str(t).strip() for t in frame[column].dropna()]
        else:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read captions ({exc})") from None
    captions = [line for line in lines if line]
    if not captions:
        raise InputError(f"{path}: contains no captions")
    return captions


def reference_from_embeddings(embedded: EmbeddingSet, source: str) -> Reference:
    if not embedded.files:
        detail = f"; {len(embedded.errors)} file(s) failed, e.g. {embedded.errors[0].error}" if embedded.errors else ""
        raise InputError(f"{source}: contains no usable audio files{detail}")
    frames = embedded.frames()
    if frames.shape[0] < 2:
        raise InputError(f"{source}: gives {frames.shape[0]} frame; reference statistics need at least 2")
    stats = GaussianStats.from_samples(frames, encoder=embedded.encoder.fingerprint,
                                       info={"files": len(embedded.files), "frames": int(frames.shape[0])})
    return Reference(stats, embedded.pooled(), "audio", source)


def reference_from_text(captions: list[str], encoder: Encoder, source: str) -> Reference:
    if "text" not in encoder.modalities:
        raise InputError(f"{source}: a caption reference needs a cross-modal encoder; "
                         f"{encoder.name!r} embeds only {', '.join(encoder.modalities)}")
    emb = np.asarray(encoder.embed_text(captions), dtype=np.float64)
    if emb.shape[0] < 2:
        raise InputError(f"{source}: has {emb.shape[0]} caption; reference statistics need at least 2")
    stats = GaussianStats.from_samples(emb, encoder=encoder.fingerprint(), info={"captions": len(captions)})
    return Reference(stats, emb, "text", source)


def build_reference(ref: str | os.PathLike[str], encoder: Encoder, *, cache: EmbeddingCache | None = None,
                    options: LoadOptions = LoadOptions(), progress: bool = False) -> Reference:
    """A reference from a directory of audio, a captions file or a saved stats file (``.npz``)."""
    path = Path(ref)
    if path.is_dir():
        ref_set = embed_directory(path, encoder, cache=cache, options=options, progress=progress)
        if not ref_set.files and not ref_set.errors:
            raise InputError(f"{path}: contains no audio files")
        return reference_from_embeddings(ref_set, str(path))
    if not path.exists():
        raise InputError(f"{path}: no such reference (expected a directory, a .npz stats file or captions)")
    if path.suffix.lower() == ".npz":
        reference = Reference.load(path)
        reference.check_encoder(encoder.fingerprint())
        return reference
    if path.suffix.lower() in TEXT_SUFFIXES:
        return reference_from_text(read_captions(path), encoder, str(path))
    raise InputError(f"{path}: unknown reference type (expected a directory, .npz, or {', '.join(TEXT_SUFFIXES)})")
