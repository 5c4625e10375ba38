"""Write generated clips to wav files: one per (prompt, seed), plus a manifest rewardkit can score.

The manifest ``prompts.csv`` has columns ``file, prompt, seed`` (the
``file, prompt`` columns ``rewardkit score --prompts`` reads). Every file
is written atomically, so a folder never holds half a clip.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rewardkit._fileio import atomic_write
from rewardkit.errors import InputError

from .adapter import DiffusionAdapter, check_seeds

MANIFEST = "prompts.csv"


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio [shape=(samples,)] as 16-bit PCM wav, atomically."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32), sample_rate, format="WAV", subtype="PCM_16")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def sample_plan(prompts: Sequence[str], n: int, seed: int) -> tuple[list[str], list[int]]:
    """Each prompt ``n`` times; sample i (prompt-major order) gets seed ``seed + i``."""
    if n < 1:
        raise InputError(f"n: need at least 1 sample per prompt, got {n}")
    prompts = [p for p in prompts for _ in range(n)]
    return prompts, [seed + i for i in range(len(prompts))]


def write_samples(adapter: DiffusionAdapter, prompts: Sequence[str], seeds: Sequence[int],
                  out_dir: str | os.PathLike[str], *, steps: int = 40, guidance: float = 3.0, batch_size: int = 16,
                  progress: Callable[[str], None] | None = None) -> list[Path]:
    """Generate, decode and write one wav per (prompt, seed); returns the paths in order.

    Files are named ``{index:04d}_seed{seed}.wav``; ``prompts.csv`` beside
    them lists file, prompt and seed. The audio of a (prompt, seed) pair does
    not depend on ``batch_size`` (see :meth:`DiffusionAdapter.generate`).
    """
    import pandas as pd

    prompts, seeds = check_seeds(list(prompts), list(seeds))
    if batch_size < 1:
        raise InputError(f"batch_size: need at least 1, got {batch_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(0, len(prompts), batch_size):
        chunk_p, chunk_s = prompts[s:s + batch_size], seeds[s:s + batch_size]
        latents = adapter.generate(chunk_p, chunk_s, steps, guidance)
        for j, audio in enumerate(adapter.decode(latents)):
            path = out_dir / f"{s + j:04d}_seed{chunk_s[j]}.wav"
            write_wav(path, audio, adapter.sample_rate)
            paths.append(path)
        if progress:
            progress(f"sample: {len(paths)}/{len(prompts)} clips")
    manifest = pd.DataFrame({"file": [p.name for p in paths], "prompt": prompts, "seed": seeds})
    with atomic_write(out_dir / MANIFEST) as f:
        f.write(manifest.to_csv(index=False).encode())
    return paths
