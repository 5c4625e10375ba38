"""A cache of a base model's evaluation clips, so ``finetune eval`` generates them once.

Every run fine-tuned from the same base checkpoint is evaluated against the
same base clips (same prompts, seeds, steps, guidance). An entry is keyed by
a hash of the base model's files (``config.json`` and ``model.safetensors``),
the prompts and seeds, the sampler settings, the device type (and, on the
CPU, the torch thread count) and the torch version, so a changed checkpoint
or setting misses. Entries are written atomically and carry their key and a
checksum of the audio; an entry that does not match is ignored and rewritten.

Layout: ``ROOT/<key[:2]>/<key>.npz`` holding ``audio`` (float32, (n, samples)),
``sample_rate``, ``key``, ``digest``. Location: ``$FINETUNE_CACHE``, else the
per-user cache folder (``platformdirs.user_cache_dir("finetune")``) with
``/base-generations`` appended.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rewardkit.cache import file_digest, read_entry, write_entry

__all__ = ["ENV_VAR", "GenerationCache", "default_dir", "model_digest"]

ENV_VAR = "FINETUNE_CACHE"
_MODEL_FILES = ("config.json", "model.safetensors")


def default_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser() / "base-generations"
    import platformdirs

    return Path(platformdirs.user_cache_dir("finetune")) / "base-generations"


def model_digest(folder: Path | None) -> str | None:
    """sha256 over a model folder's config and weights; None when the folder lacks them."""
    if folder is None or not all((folder / name).is_file() for name in _MODEL_FILES):
        return None
    parts = {name: file_digest(folder / name) for name in _MODEL_FILES}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class GenerationCache:
    """Decoded clips of a model, by (model digest, prompts, seeds, steps, guidance, device, CPU threads)."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root).expanduser() if root is not None else default_dir()

    @staticmethod
    def key(model: str, digest: str, prompts: Sequence[str], seeds: Sequence[int], steps: int, guidance: float,
            device: str) -> str:
        device_type = torch.device(device).type
        # The CPU's thread count changes float rounding (about 1e-6 in the clips): part of the key, so a hit
        # is bit for bit what this process would generate.
        threads = torch.get_num_threads() if device_type == "cpu" else None
        blob = json.dumps({"model": model, "digest": digest, "prompts": list(prompts), "seeds": [int(s) for s in seeds],
                           "steps": int(steps), "guidance": float(guidance), "device": device_type,
                           "threads": threads, "torch": torch.__version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str, n: int) -> tuple[np.ndarray, int] | None:
        """(audio [shape=(n, samples)], sample_rate), or None when absent or not trustworthy."""
        entry = read_entry(self._path(key), key, "audio")
        if entry is None or "sample_rate" not in entry:
            return None
        audio = entry["audio"]
        ok = audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[0] == n
        return (audio, int(entry["sample_rate"])) if ok else None

    def put(self, key: str, audio: np.ndarray, sample_rate: int) -> None:
        """Store an entry atomically; a cache that cannot be written is skipped, never fatal."""
        try:
            write_entry(self._path(key), key, "audio", np.asarray(audio, dtype=np.float32), sample_rate=sample_rate)
        except OSError:
            pass
