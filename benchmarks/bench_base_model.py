"""How good the built-in diffusion model is, before any fine-tuning.

For ``--n`` held-out captions (the synthetic world's caption sampler, seed ``--seed``, never used
in pretraining) the base model generates one clip each; then, in one run:

* text-audio score (synthclap cosine) of each sample with its own caption vs shuffled captions;
* dataset FAD (synthclap and mel) of the samples to ``--n`` held-out corpus clips, next to the FAD of
  white noise and of near-silence scored the same way;
* generation speed on CPU (clips per second including decoding) at 20 and 40 DDIM steps.

Usage::

    .venv/bin/python benchmarks/bench_base_model.py [--n 200] [--checkpoint DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe

import rewardkit as rk
from rewardkit import encoders, synth
from rewardkit.audio import LoadOptions
from rewardkit.embedding import embed_directory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    import torch

    from finetune.models.tiny_diffusion import TinyDiffusion

    if args.threads:
        torch.set_num_threads(args.threads)
    model = TinyDiffusion.load(args.checkpoint)
    captions = [c for c, _ in synth.sample_captions(args.n, args.seed)]
    speed = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for steps in (20, 40):
            out = root / f"gen{steps}"
            out.mkdir()
            start = time.perf_counter()
            for s in range(0, args.n, 16):
                batch = captions[s:s + 16]
                latents = model.generate(batch, list(range(s, s + len(batch))), steps=steps, guidance=3.0)
                for i, audio in enumerate(model.decode(latents)):
                    sf.write(out / f"s{s + i:04d}.wav", audio, model.sample_rate)
            speed[steps] = args.n / (time.perf_counter() - start)
        ref = root / "heldout"
        synth.make_corpus(ref, args.n, seed=args.seed + 1000)
        rng = np.random.default_rng(0)
        for name, make in (("noise", lambda: 0.3 * rng.normal(size=64000)),
                           ("silence", lambda: 1e-4 * rng.normal(size=64000))):
            (root / name).mkdir()
            for i in range(args.n):
                sf.write(root / name / f"{i:04d}.wav", make().astype(np.float32), 16000)
        prompts = {f"s{i:04d}.wav": c for i, c in enumerate(captions)}
        rows = {}
        for enc_name in ("synthclap", "mel"):
            enc = encoders.get(enc_name)
            for label in ("gen40", "noise", "silence"):
                report = rk.score(root / label, ref, encoder=enc, use_cache=False,
                                  options=LoadOptions(allow_silence=True))
                rows[(enc_name, label)] = report.metrics["fad"]
        enc = encoders.get("synthclap")
        gen = embed_directory(root / "gen40", enc)
        audio = gen.pooled()
        text = enc.embed_text([prompts[f.file] for f in gen.files])
        own = rk.cosine_scores(audio, text)
        shuffled = rk.cosine_scores(audio, text[np.random.default_rng(1).permutation(len(text))])
    print(f"machine: {describe()}; torch threads {torch.get_num_threads()}")
    sem = np.sqrt(len(own))
    print(f"checkpoint: {args.checkpoint or 'shipped'}; {args.n} held-out captions (sampler seed {args.seed})\n")
    print(f"text-audio score (synthclap cosine), own caption {own.mean():.3f} +- {own.std(ddof=1) / sem:.3f}, "
          f"shuffled {shuffled.mean():.3f} +- {shuffled.std(ddof=1) / sem:.3f}")
    print("\n| encoder | FAD samples | FAD white noise | FAD near-silence |\n|---|---:|---:|---:|")
    for enc_name in ("synthclap", "mel"):
        print(f"| {enc_name} | {rows[(enc_name, 'gen40')]:.4g} | {rows[(enc_name, 'noise')]:.4g} | "
              f"{rows[(enc_name, 'silence')]:.4g} |")
    print(f"\ngeneration incl. decoding, batch 16, guidance 3: {speed[20]:.2f} clips/s at 20 steps, "
          f"{speed[40]:.2f} clips/s at 40 steps")


if __name__ == "__main__":
    main()
