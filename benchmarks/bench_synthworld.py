"""The shipped models of the synthetic world, measured on held-out corpora.

* synthclap: text-to-audio recall@1/@5 among 100 candidates (10 random sets of the held-out
  corpus), matched vs shuffled caption-audio cosine, zero-shot accuracy per attribute;
* every shipped aesthetics head (synthclap's, mel's): PLCC and SRCC against the synthetic rater on a
  held-out, half-degraded corpus of another seed.

Usage::

    .venv/bin/python benchmarks/bench_synthworld.py [--heldout-seed 1] [--ratings-seed 3] [--n 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe

from rewardkit import encoders, synth
from rewardkit.aesthetics import AestheticsPredictor
from rewardkit.embedding import embed_files
from rewardkit.training.contrastive import evaluate_retrieval, zero_shot_accuracy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--heldout-seed", type=int, default=1)
    p.add_argument("--ratings-seed", type=int, default=3)
    p.add_argument("--n", type=int, default=300)
    args = p.parse_args()
    enc = encoders.get("synthclap", device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        held = Path(tmp) / "heldout"
        synth.make_corpus(held, args.n, seed=args.heldout_seed)
        retrieval = evaluate_retrieval(enc, held, candidates=100, draws=10)
        zero = zero_shot_accuracy(enc, held)
        rated = Path(tmp) / "rated"
        meta = synth.make_corpus(rated, args.n, seed=args.ratings_seed, degrade_fraction=0.5)
        truth = pd.read_csv(rated / "ratings.csv")["rating"].to_numpy()
        heads = {}
        for name in ("synthclap", "mel"):
            head = AestheticsPredictor.default_for(name)
            if head is not None:
                head_encoder = enc if name == "synthclap" else encoders.get(name, device="cpu")
                heads[name] = (head, head.score_set(embed_files([rated / f for f in meta["file"]], head_encoder)))
    print(f"machine: {describe()}")
    print(f"encoder: {enc.fingerprint()}\n")
    print(json.dumps(retrieval, indent=2))
    print("\n| attribute | zero-shot accuracy | chance | majority class |\n|---|---:|---:|---:|")
    for name, r in zero.items():
        print(f"| {name} | {r['accuracy']:.3f} | {r['chance']:.3f} | {r['majority']:.3f} |")
    for name, (head, pred) in heads.items():
        print(f"\n{name} aesthetics head ({'+'.join(head.features)} of the frames, trained on "
              f"{head.training['clips']} clips) on {args.n} held-out clips (seed {args.ratings_seed}, half degraded): "
              f"PLCC {stats.pearsonr(pred, truth)[0]:.3f}, SRCC {stats.spearmanr(pred, truth)[0]:.3f}, "
              f"MAE {np.abs(pred - truth).mean():.3f}")


if __name__ == "__main__":
    main()
