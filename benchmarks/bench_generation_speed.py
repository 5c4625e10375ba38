"""Generation speed of the shipped tiny_diffusion model on this machine: clips per second, decoding included.

    python benchmarks/bench_generation_speed.py --n 32 --repeats 3 --threads 2

Times ``generate`` + ``decode`` (NNLS + Griffin-Lim) of ``--n`` held-out captions at 20 and 40 DDIM steps,
guidance 3, batch 16, after one warm-up batch; reports the median of ``--repeats``. Run it on an idle machine:
other jobs on the same cores make the figure meaningless.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import describe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    import os

    import torch

    from finetune.models.tiny_diffusion import TinyDiffusion
    from rewardkit.synth import sample_captions

    if args.threads:
        torch.set_num_threads(args.threads)
    model = TinyDiffusion.load()
    prompts = [c for c, _ in sample_captions(args.n, seed=7)]
    cond = model.encode_prompts(prompts)
    model.decode(model.generate(prompts[:16], list(range(16)), steps=4, cond=cond[:16], batch_size=16))
    load = os.getloadavg()[0]
    for steps in (20, 40):
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.decode(model.generate(prompts, list(range(args.n)), steps=steps, guidance=3.0, cond=cond,
                                        batch_size=16))
            rates.append(args.n / (time.perf_counter() - start))
        print(f"{steps} steps: {statistics.median(rates):.2f} clips/s (median of {args.repeats}; "
              f"runs {', '.join(f'{r:.2f}' for r in rates)})")
    print(f"machine: {describe()}; torch threads {torch.get_num_threads()}; "
          f"1-min load average before timing {load:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
