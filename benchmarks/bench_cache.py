"""Cold vs warm `rewardkit score` (the embedding cache), and CLAP batching.

1. 200 generated clips and 40 reference clips (5 s, 44.1 kHz, seeded tones and noise) are
   scored twice with the same cache folder, through the real command line
   (``rewardkit score --encoder E --ref REF GEN``, a fresh process each time): the first run
   decodes and embeds everything, the second finds every embedding in the cache. Medians of
   ``--cold`` fresh-cache runs and ``--warm`` warm runs.
2. CLAP windows per second: one batched forward pass over ``--windows`` 10 s windows vs one
   window per forward pass (as fadtk feeds laion-clap), random weights of the real
   HTSAT-tiny architecture.

Usage::

    .venv/bin/python benchmarks/bench_cache.py [--encoders crepe,clap] [--cold 2] [--warm 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe

ENCODER_ARGS = {
    "crepe": ["-e", "crepe"],
    "mel": ["-e", "mel"],
    # random weights of the real architecture: no CLAP checkpoint can be downloaded here
    "clap": ["-e", "clap", "-O", "random_init=true", "-O", "tmodel=transformer"],
}


def make_clips(folder: Path, n: int, seed: int, rate: int = 44100, seconds: float = 5.0) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    for i in range(n):
        f0 = rng.uniform(110, 880)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t))
        x += 0.05 * rng.normal(size=t.shape)
        sf.write(folder / f"clip_{i:03d}.wav", x.astype(np.float32), rate)


def time_command(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench_score(encoder: str, gen: Path, ref: Path, work: Path, cold: int, warm: int) -> dict:
    exe = str(Path(sys.executable).with_name("rewardkit"))
    base = [exe, "score", *ENCODER_ARGS[encoder], "--ref", str(ref), str(gen), "--format", "json"]
    cold_times, warm_times = [], []
    for i in range(cold):
        cache = work / f"cache-{encoder}-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        cold_times.append(time_command([*base, "--cache-dir", str(cache)]))
    for _ in range(warm):
        warm_times.append(time_command([*base, "--cache-dir", str(work / f"cache-{encoder}-0")]))
    return {"encoder": encoder, "cold": statistics.median(cold_times), "warm": statistics.median(warm_times)}


def bench_clap_batching(windows: int, repeats: int) -> dict:
    from rewardkit import encoders

    enc = encoders.get("clap", random_init=True, tmodel="transformer", device="cpu", batch_size=windows)
    x = np.random.default_rng(0).normal(scale=0.1, size=(windows, enc.windowing.window)).astype(np.float32)
    enc.embed_windows(x[:1])  # warm-up
    batched, single = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        a = enc.embed_windows(x)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        b = np.concatenate([enc.embed_windows(x[i:i + 1]) for i in range(windows)])
        single.append(time.perf_counter() - start)
    return {"batched": windows / statistics.median(batched), "single": windows / statistics.median(single),
            "maxdiff": float(np.abs(a - b).max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoders", default="crepe,clap")
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--cold", type=int, default=2)
    p.add_argument("--warm", type=int, default=3)
    p.add_argument("--windows", type=int, default=16)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rk-bench-"))
    try:
        make_clips(work / "gen", args.clips, seed=1)
        make_clips(work / "ref", 40, seed=2)
        rows = [bench_score(e, work / "gen", work / "ref", work, args.cold, args.warm)
                for e in args.encoders.split(",")]
        print(f"machine: {describe()}; torch threads {os.cpu_count()}\n")
        print(f"| encoder | cold run (s) | warm run (s) | speed-up |  ({args.clips} + 40 clips of 5 s)")
        print("|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['encoder']} | {r['cold']:.2f} | {r['warm']:.2f} | {r['cold'] / r['warm']:.1f}x |")
        if "clap" in args.encoders.split(","):
            b = bench_clap_batching(args.windows, 3)
            print(f"\nCLAP HTSAT-tiny, {args.windows} windows of 10 s: batched {b['batched']:.2f} windows/s, "
                  f"one per forward {b['single']:.2f} windows/s, {b['batched'] / b['single']:.2f}x; "
                  f"max |difference| {b['maxdiff']:.1e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
