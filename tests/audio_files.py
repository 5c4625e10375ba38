"""Small audio files written on the fly: good ones, and every kind of bad one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(freq: float, seconds: float, rate: int, *, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(scale=0.01, size=t.shape)
    return (amp * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def write_good_set(folder: Path, n: int = 4, *, rate: int = 16000, seconds: float = 2.0, base: float = 220.0,
                   seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"clip_{i:02d}.wav"
        sf.write(p, tone(base * (1 + 0.25 * i), seconds, rate, seed=seed + i), rate)
        paths.append(p)
    return paths


def write_bad_files(folder: Path) -> dict[str, str]:
    """Every bad input the issue lists; returns {relative name: expected message fragment}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = tone(440, 1.0, 16000)
    (folder / "empty.wav").write_bytes(b"")
    full = folder / "_full.wav"
    sf.write(full, good, 16000)
    (folder / "truncated_header.wav").write_bytes(full.read_bytes()[:20])
    full.unlink()
    (folder / "not_audio.mp3").write_bytes(b"this is a text file, not audio\n" * 50)
    (folder / "not_audio.flac").write_bytes(bytes(range(256)) * 20)
    sf.write(folder / "zero_length.wav", np.zeros(0, np.float32), 16000)
    sf.write(folder / "all_zero.wav", np.zeros(16000, np.float32), 16000)
    nan = good.copy()
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    inf = good.copy()
    inf[5] = np.inf
    sf.write(folder / "inf.wav", inf, 16000, subtype="FLOAT")
    sf.write(folder / "one_sample.wav", good[:1], 16000)
    return {
        "empty.wav": "is empty (0 bytes)",
        "truncated_header.wav": "cannot decode as audio",
        "not_audio.mp3": "cannot decode as audio",
        "not_audio.flac": "cannot decode as audio",
        "zero_length.wav": "has no samples",
        "all_zero.wav": "is silent",
        "nan.wav": "contains NaN/Inf samples (first at sample 100)",
        "inf.wav": "contains NaN/Inf samples (first at sample 5)",
        "one_sample.wav": "too short (1 samples",
    }


def write_odd_but_good_files(folder: Path) -> list[str]:
    """Unusual files that must work: many channels, extreme rates, odd names, other formats."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    x = tone(330, 1.5, 48000)
    sf.write(folder / "eight_channels.wav", np.stack([x * (1 - 0.1 * c) for c in range(8)], axis=1), 48000)
    sf.write(folder / "rate_8k.wav", tone(330, 1.5, 8000), 8000)
    sf.write(folder / "rate_192k.wav", tone(330, 1.5, 192000), 192000)
    (folder / "nested dir").mkdir(exist_ok=True)
    sf.write(folder / "nested dir" / "my song ü 日本.flac", tone(330, 1.5, 22050), 22050)
    sf.write(folder / "clip.ogg", tone(330, 1.5, 44100), 44100, format="OGG", subtype="VORBIS")
    sf.write(folder / "clip.mp3", tone(330, 1.5, 44100), 44100, format="MP3", subtype="MPEG_LAYER_III")
    (folder / "readme.txt").write_text("not audio, ignored")
    names += ["eight_channels.wav", "rate_8k.wav", "rate_192k.wav", "nested dir/my song ü 日本.flac",
              "clip.ogg", "clip.mp3"]
    return sorted(names)
