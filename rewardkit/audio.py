"""Audio in: decoding, downmixing, resampling and deterministic windowing, streamed.

Loading policy, the same for every encoder:

* **Decoding**: libsndfile through ``soundfile`` (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...);
  what it cannot open is tried with ``audioread`` (ffmpeg, GStreamer or MAD where installed).
* **Mono**: multichannel audio is downmixed by averaging the channels with equal weight.
* **Resampling**: to the encoder's rate with libsoxr's ``HQ`` (high quality) polyphase
  resampler through ``soxr.ResampleStream``, the same resampler librosa uses by default.
* **Streaming**: files are read in blocks of ``block_seconds``; a long file is never held
  whole in memory (only the encoder windows in flight are).
* **Windows**: see :class:`rewardkit.encoders.Windowing`; no randomness anywhere.

Every problem with a file raises :class:`~rewardkit.errors.AudioError` whose message
starts with the file's path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .encoders.base import Windowing
from .errors import AudioError, InputError

#: File extensions treated as audio when scanning a directory (case-insensitive).
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                              ".aifc", ".au", ".caf", ".w64", ".rf64"})


@dataclass(frozen=True)
class LoadOptions:
    """Loading parameters that change the audio an encoder sees (part of every cache key).

    ``min_duration``: shorter files (in seconds, at the file's rate) are an error.
    ``allow_silence``: accept files whose samples are all zero (an error by default:
    silence in an evaluation set is almost always a rendering bug).
    """

    min_duration: float = 0.05
    allow_silence: bool = False
    block_seconds: float = 30.0

    def key(self) -> dict:
        # block_seconds does not change the output beyond resampler round-off; keep it in the key anyway
        # so that a cached embedding is always exactly reproducible from its key.
        return {"min_duration": self.min_duration, "allow_silence": self.allow_silence,
                "block_seconds": self.block_seconds, "resampler": "soxr-HQ", "downmix": "mean"}


def find_audio(directory: str | os.PathLike[str]) -> list[Path]:
    """Audio files under ``directory`` (recursively, sorted by relative path; hidden entries skipped)."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames
                     if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_EXTENSIONS)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


class _Source:
    """An open file: its rate, channel count, frame count and a block reader."""

    def __init__(self, path: Path):
        self.path = path
        self._sf = None
        self._ar = None
        import soundfile as sf

        try:
            if path.stat().st_size == 0:
                raise AudioError(f"{path}: is empty (0 bytes)")
        except OSError as exc:
            raise AudioError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            self._sf = sf.SoundFile(str(path))
        except Exception as sf_exc:  # libsndfile could not open it: try audioread
            try:
                import audioread

                self._ar = audioread.audio_open(str(path))
            except Exception:
                raise AudioError(f"{path}: cannot decode as audio (libsndfile: {_short(sf_exc)})") from None
        if self._sf is not None:
            self.rate, self.channels, self.frames = self._sf.samplerate, self._sf.channels, self._sf.frames
        else:
            self.rate, self.channels = self._ar.samplerate, self._ar.channels
            self.frames = round(self._ar.duration * self.rate)
        if self.rate <= 0 or self.channels <= 0:
            self.close()
            raise AudioError(f"{path}: invalid header (rate {self.rate}, channels {self.channels})")

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """Blocks of shape (frames, channels), float32."""
        try:
            if self._sf is not None:
                while True:
                    block = self._sf.read(size, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield block
            else:
                for buf in self._ar:
                    ints = np.frombuffer(buf, dtype="<i2")
                    yield (ints.astype(np.float32) / 32768.0).reshape(-1, self.channels)
        except AudioError:
            raise
        except Exception as exc:
            raise AudioError(f"{self.path}: decoding failed ({_short(exc)})") from None

    def close(self) -> None:
        for f in (self._sf, self._ar):
            if f is not None:
                f.close()


def _short(exc: Exception) -> str:
    # soundfile's messages repeat the full path; its error_string is just the reason.
    text = (getattr(exc, "error_string", None) or str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__


def stream_audio(path: str | os.PathLike[str], sample_rate: int, *,
                 options: LoadOptions = LoadOptions()) -> Iterator[np.ndarray]:
    """Yield the file's audio as mono float32 blocks at ``sample_rate``.

    Checks made while streaming (each an :class:`AudioError` naming the file):
    no samples, NaN/Inf samples, shorter than ``options.min_duration``, and,
    unless ``options.allow_silence``, all samples zero (raised at the end).
    """
    import soxr

    path = Path(path)
    src = _Source(path)
    try:
        block = max(1, int(options.block_seconds * src.rate))
        resampler = None if src.rate == sample_rate else soxr.ResampleStream(
            src.rate, sample_rate, 1, dtype="float32", quality="HQ")
        seen, peak = 0, 0.0
        pending = None
        for chunk in src.blocks(block):
            bad = ~np.isfinite(chunk)
            if bad.any():
                first = int(np.argwhere(bad)[0][0]) + seen
                raise AudioError(f"{path}: contains NaN/Inf samples (first at sample {first})")
            seen += chunk.shape[0]
            mono = chunk.mean(axis=1, dtype=np.float32) if chunk.shape[1] > 1 else chunk[:, 0]
            peak = max(peak, float(np.abs(mono).max(initial=0.0)))
            # Hold one block back so the resampler can be told which block is the last.
            if pending is not None:
                out = pending if resampler is None else resampler.resample_chunk(pending, last=False)
                if out.size:
                    yield out
            pending = mono
        if seen == 0:
            raise AudioError(f"{path}: has no samples (zero-length audio)")
        if seen < options.min_duration * src.rate:
            raise AudioError(f"{path}: too short ({seen} samples = {seen / src.rate:.4f} s; "
                             f"the minimum is {options.min_duration} s)")
        if peak == 0.0 and not options.allow_silence:
            raise AudioError(f"{path}: is silent (every sample is zero)")
        out = pending if resampler is None else resampler.resample_chunk(pending, last=True)
        if out.size:
            yield out
    finally:
        src.close()


def load_audio(path: str | os.PathLike[str], sample_rate: int, *,
               options: LoadOptions = LoadOptions()) -> np.ndarray:
    """The whole file as one mono float32 array at ``sample_rate`` (for short clips and tests)."""
    parts = list(stream_audio(path, sample_rate, options=options))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def frame_windows(blocks: Iterator[np.ndarray], windowing: Windowing) -> Iterator[np.ndarray]:
    """Cut a stream of mono blocks into windows of ``windowing.window`` samples.

    Windows start every ``hop`` samples; if the hops leave the end uncovered, a
    last window aligned to the end of the audio is added. Audio shorter than
    one window gives exactly one window, filled by ``windowing.pad``. The
    output depends only on the audio, never on how it was split into blocks.
    """
    w, hop = windowing.window, windowing.hop
    buf = np.zeros(0, np.float32)
    buf_start = 0          # absolute index of buf[0]
    next_start = 0         # absolute start of the next window
    total = 0
    last_end = 0
    for block in blocks:
        buf = np.concatenate([buf, block.astype(np.float32, copy=False)])
        total += block.shape[0]
        while next_start + w <= total:
            off = next_start - buf_start
            yield buf[off:off + w].copy()
            last_end = next_start + w
            next_start += hop
        # Keep what a future window, or the end-aligned last one, may still need.
        keep_from = min(next_start, max(total - w, 0))
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start:]
            buf_start = keep_from
    if total == 0:
        return
    if total < w:
        clip = buf[: total]
        if windowing.pad == "repeat":
            yield np.resize(clip, w).astype(np.float32)    # np.resize tiles the clip
        else:
            copies = w // total if windowing.pad == "repeatpad" else 1
            filled = np.tile(clip, copies)
            yield np.concatenate([filled, np.zeros(w - filled.shape[0], np.float32)])
    elif last_end < total:
        yield buf[total - w - buf_start: total - buf_start].copy()
