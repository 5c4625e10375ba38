"""Speed and agreement of rewardkit's metric core against the formulas the peers use.

Peers, measured in the same run on the same data:

* dataset and per-song FAD: ``scipy.linalg.sqrtm`` of the covariance product with the real
  part kept (what fadtk and frechet-audio-distance compute), per song in a Python loop;
* Vendi: the ``vendi-score`` package (``pip install -e '.[bench]'``): ``score_X`` (the
  n x n kernel) and ``score_dual`` (the d x d dual).

Usage::

    .venv/bin/python benchmarks/bench_metrics.py [--quick] [--peer-songs 50]

Prints a Markdown table (median seconds, ratio, largest relative difference) to paste
into benchmarks/RESULTS.md with this command and the machine line it prints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe

import rewardkit as rk


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def peer_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """The peers' formula: general sqrtm of the non-symmetric product, real part kept."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def embeddings(rng, n, d):
    """Correlated, anisotropic embeddings (a random mixing of unit Gaussians)."""
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + rng.normal(size=d)


def rel(a, b) -> float:
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def bench_dataset_fad(rng, d, n, repeats):
    x, y = embeddings(rng, n, d), embeddings(rng, n, d) * 1.1 + 0.05
    sx, sy = rk.GaussianStats.from_samples(x), rk.GaussianStats.from_samples(y)

    def ours():
        fresh = sy.copy()  # no cached square root: the cold cost
        return rk.frechet_distance(sx, fresh)

    t_ours, v_ours = median_seconds(ours, repeats)
    t_cached, _ = median_seconds(lambda: rk.frechet_distance(sx, sy), repeats)
    t_peer, v_peer = median_seconds(lambda: peer_frechet(sx.mean, sx.cov, sy.mean, sy.cov), repeats)
    return {"case": f"dataset FAD, n={n}, d={d}", "ours": t_ours, "peer": t_peer,
            "note": f"ours with the reference factor already cached: {t_cached:.3g} s",
            "rel": rel(v_ours, v_peer)}


def bench_per_song(rng, songs, frames, d, peer_songs, repeats):
    ref = rk.GaussianStats.from_samples(embeddings(rng, 10000, d))
    data = [embeddings(rng, frames, d) for _ in range(songs)]
    t_ours, v_ours = median_seconds(lambda: rk.per_song_frechet(data, ref), repeats)

    def peer():
        return [peer_frechet(s.mean(0), np.cov(s, rowvar=False), ref.mean, ref.cov)
                for s in data[:peer_songs]]

    t_peer, v_peer = median_seconds(peer, 1)
    t_peer *= songs / peer_songs
    # An exact reference for rank-deficient songs: the dense symmetric form in float64, one song at a time.
    exact = np.array([rk.frechet_distance(s, ref) for s in data[:peer_songs]])
    return {"case": f"per-song FAD, {songs} songs x {frames} frames, d={d}", "ours": t_ours, "peer": t_peer,
            "note": (f"peer timed on {peer_songs} songs, scaled to {songs}; ours vs dense eigen form: "
                     f"{rel(v_ours[:peer_songs], exact):.1e}"),
            "rel": rel(v_ours[:peer_songs], v_peer)}


def bench_vendi(rng, n, d, repeats):
    from vendi_score import vendi

    x = embeddings(rng, n, d)
    t_ours, v_ours = median_seconds(lambda: rk.vendi_score(x), repeats)
    t_peer, v_peer = median_seconds(lambda: vendi.score_X(x), repeats)
    t_dual, v_dual = median_seconds(lambda: vendi.score_dual(x), repeats)
    return {"case": f"Vendi (q=1, cosine), n={n}, d={d}", "ours": t_ours, "peer": t_peer,
            "note": (f"vendi-score score_X (n x n); its score_dual: {t_dual:.3g} s "
                     f"({t_dual / t_ours:.1f}x ours), rel diff {rel(v_ours, v_dual):.1e}"),
            "rel": rel(v_ours, v_peer)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for checking the script itself")
    p.add_argument("--peer-songs", type=int, default=50, help="songs the per-song peer loop is timed on")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.quick:
        rows = [bench_dataset_fad(rng, 64, 1000, 3), bench_per_song(rng, 100, 32, 64, 10, 3),
                bench_vendi(rng, 200, 64, 3)]
    else:
        rows = [bench_dataset_fad(rng, 512, 10000, 5), bench_dataset_fad(rng, 2048, 10000, 3),
                bench_per_song(rng, 1000, 32, 512, args.peer_songs, 3), bench_vendi(rng, 2000, 512, 5)]
    print(f"machine: {describe()}\n")
    print("| case | rewardkit (s) | peer (s) | speed-up | max rel. diff | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['case']} | {r['ours']:.4g} | {r['peer']:.4g} | {r['peer'] / r['ours']:.1f}x "
              f"| {r['rel']:.1e} | {r['note']} |")


if __name__ == "__main__":
    main()
