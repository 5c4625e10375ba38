"""The content-addressed embedding cache.

An entry holds one file's frame embeddings (float32, ``(n_frames, dim)``) for
one encoder. Its key hashes the file's *bytes* (so a renamed or moved file
hits and an edited one misses), the encoder fingerprint and the loading
parameters. Entries are written atomically (temporary file + ``os.replace``),
so concurrent writers are safe and readers never see half an entry; each
entry carries its own key and a checksum of its data, so a truncated,
corrupted or misplaced entry counts as a miss and is recomputed.

Layout: ``ROOT/<encoder name>-<fingerprint hash>/<key[:2]>/<key>.npz``.
Location: the ``cache_dir`` argument, else ``$REWARDKIT_CACHE``, else the
per-user cache folder (``platformdirs.user_cache_dir("rewardkit")``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._fileio import atomic_write
from .errors import CacheError

ENV_VAR = "REWARDKIT_CACHE"
_HASH_BLOCK = 1 << 20
# Only folders of this shape are ever listed or deleted, whatever else lives under the root.
_ENCODER_FOLDER = re.compile(r"^[A-Za-z0-9_.-]+-[0-9a-f]{16}$")


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("rewardkit"))


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks; nothing is decoded)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def _data_digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def write_entry(path: str | os.PathLike[str], key: str, name: str, data: np.ndarray, **extra: Any) -> None:
    """Write a checked entry atomically: ``data`` under ``name``, ``key``, a sha256 ``digest`` of it, ``extra``.

    Raises OSError when it cannot be written (``path`` is then untouched).
    """
    data = np.ascontiguousarray(data)
    with atomic_write(path) as f:
        np.savez(f, **{name: data}, **{k: np.asarray(v) for k, v in extra.items()},
                 key=np.array(key), digest=np.array(_data_digest(data)))


def read_entry(path: str | os.PathLike[str], key: str, name: str) -> dict[str, np.ndarray] | None:
    """The arrays of an entry written by :func:`write_entry` under ``key``, or None.

    None when the file is missing or unreadable, holds another key, or its
    ``name`` array is not finite or does not match its digest (truncated,
    corrupted or misplaced). Callers still check dtype and shape.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            entry = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    data = entry.get(name)
    if (data is None or data.dtype.kind not in "fc" or str(entry.get("key")) != key
            or str(entry.get("digest")) != _data_digest(data) or not np.isfinite(data).all()):
        return None
    return entry


@dataclass(frozen=True)
class CacheStats:
    root: Path
    entries: int
    bytes: int
    by_encoder: dict[str, int]


class EmbeddingCache:
    """Frame embeddings keyed by content, per encoder fingerprint.

    Parameters
    ----------
    root : path, optional
        Cache directory (see the module docstring for the default).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        if self.root.exists() and not self.root.is_dir():
            raise CacheError(f"{self.root}: cache location exists and is not a directory")

    @staticmethod
    def key(content_digest: str, fingerprint: str, loading: dict[str, Any]) -> str:
        blob = json.dumps({"content": content_digest, "encoder": fingerprint, "loading": loading},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, fingerprint: str, key: str) -> Path:
        folder = fingerprint.replace(":", "-").replace("/", "_")
        return self.root / folder / key[:2] / f"{key}.npz"

    def get(self, fingerprint: str, key: str, dim: int) -> np.ndarray | None:
        """The entry, or None when absent or not trustworthy (which is then removed)."""
        path = self._path(fingerprint, key)
        entry = read_entry(path, key, "embeddings")
        emb = None if entry is None else entry["embeddings"]
        if emb is None or emb.dtype != np.float32 or emb.ndim != 2 or emb.shape[1] != dim or emb.shape[0] == 0:
            self._discard(path)   # absent (a no-op) or not trustworthy
            return None
        return emb

    def put(self, fingerprint: str, key: str, embeddings: np.ndarray) -> None:
        """Store an entry atomically (float32)."""
        try:
            write_entry(self._path(fingerprint, key), key, "embeddings", np.asarray(embeddings, dtype=np.float32))
        except OSError as exc:
            raise CacheError(f"{self.root}: cannot write the cache ({exc})") from None

    @staticmethod
    def _discard(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    def stats(self) -> CacheStats:
        entries, size, by_encoder = 0, 0, {}
        if self.root.is_dir():
            for folder in sorted(self._encoder_folders()):
                files = list(folder.glob("*/*.npz"))
                if files:
                    by_encoder[folder.name] = len(files)
                entries += len(files)
                size += sum(f.stat().st_size for f in files)
        return CacheStats(self.root, entries, size, by_encoder)

    def clear(self, encoder: str | None = None) -> int:
        """Remove every entry (or only those of encoder name ``encoder``); returns how many."""
        removed = 0
        for folder in self._encoder_folders():
            if encoder and folder.name.rsplit("-", 1)[0] != encoder:
                continue
            removed += len(list(folder.glob("*/*.npz")))
            shutil.rmtree(folder)
        return removed

    def _encoder_folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and _ENCODER_FOLDER.match(p.name)]
