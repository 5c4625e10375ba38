"""Files in, frame embeddings out: batched across files, cached by content, one bad file never sinks a batch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import LoadOptions, find_audio, frame_windows, stream_audio
from .cache import EmbeddingCache, file_digest
from .encoders.base import Encoder, EncoderInfo
from .errors import AudioError, InputError


@dataclass
class EmbeddedFile:
    """One file's frame embeddings [shape=(n_frames, dim)], float32."""

    file: str
    """Path relative to the scanned directory (POSIX separators): the file's key in every result."""
    frames: np.ndarray
    cached: bool = False

    @property
    def pooled(self) -> np.ndarray:
        """The clip embedding: the float64 mean of the frames [shape=(dim,)]."""
        return self.frames.mean(axis=0, dtype=np.float64)


@dataclass
class FileError:
    file: str
    error: str


@dataclass
class EmbeddingSet:
    """The embeddings of a set of files, and the files that could not be embedded."""

    encoder: EncoderInfo
    files: list[EmbeddedFile] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)

    def frames(self) -> np.ndarray:
        """All frames of all files, concatenated [shape=(sum n_frames, dim)], float64."""
        if not self.files:
            return np.zeros((0, self.encoder.dim))
        return np.concatenate([f.frames for f in self.files]).astype(np.float64)

    def pooled(self) -> np.ndarray:
        """One clip embedding per file [shape=(n_files, dim)], float64."""
        return np.array([f.pooled for f in self.files]).reshape(len(self.files), self.encoder.dim)


def embed_directory(directory: str | os.PathLike[str], encoder: Encoder, *,
                    cache: EmbeddingCache | None = None, options: LoadOptions = LoadOptions(),
                    progress: bool = False) -> EmbeddingSet:
    """Embed every audio file under ``directory`` (recursively); results keyed by relative path."""
    root = Path(directory)
    return embed_files(find_audio(root), encoder, root=root, cache=cache, options=options, progress=progress)


def embed_files(paths: Sequence[str | os.PathLike[str]], encoder: Encoder, *,
                root: str | os.PathLike[str] | None = None, cache: EmbeddingCache | None = None,
                options: LoadOptions = LoadOptions(), progress: bool = False) -> EmbeddingSet:
    """Embed files, reading each once and batching the windows of many files per forward pass.

    A cache hit (same bytes, same encoder fingerprint, same loading options)
    is returned without decoding the file. A file that fails to decode is
    reported in ``errors`` and nothing of it is cached; the others go on.
    Results are in the order of ``paths``.
    """
    from tqdm.auto import tqdm

    info = encoder.info()
    root_path = Path(root) if root is not None else None
    names = [_relative(Path(p), root_path) for p in paths]
    slots: list[EmbeddedFile | FileError | None] = [None] * len(paths)
    keys: dict[int, str] = {}
    loading = options.key()

    # Per-file window outputs, waiting for the file's last window to come back from the encoder.
    outputs: dict[int, list[np.ndarray]] = {}
    expected: dict[int, int] = {}
    pending_windows: list[np.ndarray] = []
    pending_owner: list[int] = []

    def finish(i: int) -> None:
        frames = np.concatenate(outputs.pop(i)).reshape(-1, info.dim)
        del expected[i]
        if not np.isfinite(frames).all():
            slots[i] = FileError(names[i], f"{names[i]}: encoder {info.name} produced NaN/Inf embeddings")
            return
        if cache is not None:
            cache.put(info.fingerprint, keys[i], frames)
        slots[i] = EmbeddedFile(names[i], frames)

    def flush() -> None:
        if not pending_windows:
            return
        out = encoder.embed_batched(np.stack(pending_windows))
        for owner, emb in zip(pending_owner, out, strict=True):
            if owner in outputs:                # owners that failed meanwhile were dropped
                outputs[owner].append(emb)
        pending_windows.clear()
        pending_owner.clear()
        for i in [i for i, n in expected.items() if len(outputs[i]) == n]:
            finish(i)

    bar = tqdm(total=len(paths), disable=not progress, unit="file", desc=f"embed ({info.name})", leave=False)
    for i, path in enumerate(paths):
        path = Path(path)
        try:
            digest = file_digest(path)
        except OSError as exc:
            slots[i] = FileError(names[i], f"{names[i]}: cannot read ({exc.strerror or exc})")
            bar.update()
            continue
        if cache is not None:
            keys[i] = EmbeddingCache.key(digest, info.fingerprint, loading)
            hit = cache.get(info.fingerprint, keys[i], info.dim)
            if hit is not None:
                slots[i] = EmbeddedFile(names[i], hit, cached=True)
                bar.update()
                continue
        outputs[i] = []
        count = 0
        try:
            for window in frame_windows(stream_audio(path, info.sample_rate, options=options),
                                        encoder.windowing):
                pending_windows.append(window)
                pending_owner.append(i)
                count += 1
                if len(pending_windows) >= encoder.batch_size:
                    flush()
        except AudioError as exc:
            outputs.pop(i, None)
            slots[i] = FileError(names[i], _relative_message(str(exc), path, names[i]))
            bar.update()
            continue
        expected[i] = count
        if len(outputs[i]) == count:
            finish(i)
        bar.update()
    flush()
    bar.close()

    result = EmbeddingSet(info)
    for slot in slots:
        if isinstance(slot, EmbeddedFile):
            result.files.append(slot)
        elif isinstance(slot, FileError):
            result.errors.append(slot)
    return result


def embed_arrays(audio: Sequence[np.ndarray], sample_rate: int, encoder: Encoder) -> list[np.ndarray]:
    """Frame embeddings of in-memory clips [each shape=(n_frames, dim)], float32, in input order.

    The same windows as :func:`embed_files` would cut from a file holding the
    clip (mono, resampled with libsoxr HQ to the encoder's rate), batched
    across clips. Used by rewards, which score generations that never touch
    the disk. A clip that is empty, not 1-D, or has NaN/Inf samples raises
    :class:`InputError` naming its index.
    """
    import soxr

    info = encoder.info()
    windows: list[np.ndarray] = []
    counts: list[int] = []
    for i, clip in enumerate(audio):
        x = np.asarray(clip, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise InputError(f"audio[{i}]: expected a non-empty mono array, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise InputError(f"audio[{i}]: contains NaN/Inf samples")
        if sample_rate != info.sample_rate:
            x = soxr.resample(x, sample_rate, info.sample_rate, quality="HQ").astype(np.float32, copy=False)
        clip_windows = list(frame_windows(iter([x]), encoder.windowing))
        windows.extend(clip_windows)
        counts.append(len(clip_windows))
    if not windows:
        return []
    out = encoder.embed_batched(np.stack(windows)).reshape(len(windows), -1, info.dim)
    frames, start = [], 0
    for i, n in enumerate(counts):
        clip_frames = out[start:start + n].reshape(-1, info.dim)
        start += n
        if not np.isfinite(clip_frames).all():
            raise InputError(f"audio[{i}]: encoder {info.name} produced NaN/Inf embeddings")
        frames.append(clip_frames)
    return frames


def _relative(path: Path, root: Path | None) -> str:
    if root is None:
        return path.as_posix()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        raise InputError(f"{path}: is not inside {root}") from None


def _relative_message(message: str, path: Path, name: str) -> str:
    # Errors name the file by its key, as every other result does.
    return name + message[len(str(path)):] if message.startswith(str(path)) else message
