"""Two self-contained tours: the audio demo (``rewardkit demo``) and the metric core on embeddings.

:func:`audio_demo` synthesizes music clips of the synthetic world, degrades
or mis-prompts some, and scores them with every metric and encoder.
:func:`metrics_demo` (below) needs no audio at all:

The reference is a mixture of ``modes`` Gaussian clusters in ``dim``
dimensions; each "song" is ``frames`` frame embeddings scattered around a
song centre drawn from one cluster. Candidate sets differ from the
reference in known ways, so each metric's reaction can be read off:

* ``same``: a fresh draw from the reference distribution (all distances near their floor);
* ``shifted``: every frame moved by a fixed offset (FAD and KAD grow, Vendi stays);
* ``collapsed``: every song from one cluster only (Vendi drops, FAD grows);
* ``noisy``: frames twice as spread around their song centre (per-song FAD grows most).

No audio is involved; the audio demo builds on the encoders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import (
    frechet_distance,
    kernel_distance,
    per_song_frechet,
    similarity_to_set,
    vendi_score,
)
from .stats import GaussianStats

CANDIDATES = ("same", "shifted", "collapsed", "noisy")


def _songs(rng: np.random.Generator, centres: np.ndarray, n_songs: int, frames: int, *,
           modes: np.ndarray, spread: float, offset: float) -> np.ndarray:
    dim = centres.shape[1]
    picks = rng.choice(modes, size=n_songs)
    song_centres = centres[picks] + rng.normal(scale=0.5, size=(n_songs, dim))
    return song_centres[:, None, :] + offset + rng.normal(scale=spread, size=(n_songs, frames, dim))


def metrics_demo(*, seed: int = 0, dim: int = 64, modes: int = 8, songs: int = 200,
                 frames: int = 16) -> pd.DataFrame:
    """Score the four candidate sets against one reference; one row per set.

    Columns: ``fad`` (dataset Frechet distance on frames), ``kad`` (unbiased
    MMD^2, RBF kernel), ``per_song_fad_mean``, ``vendi`` (cosine kernel on
    song-mean embeddings), ``similarity_max`` (mean over songs of the cosine
    similarity to the nearest reference song). Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(modes, dim))
    everywhere = np.arange(modes)
    ref_songs = _songs(rng, centres, songs, frames, modes=everywhere, spread=1.0, offset=0.0)
    ref_frames = ref_songs.reshape(-1, dim)
    ref_stats = GaussianStats.from_samples(ref_frames, info={"demo": "reference", "seed": seed})
    ref_pooled = ref_songs.mean(axis=1)

    settings = {
        "same": dict(modes=everywhere, spread=1.0, offset=0.0),
        "shifted": dict(modes=everywhere, spread=1.0, offset=0.5),
        "collapsed": dict(modes=everywhere[:1], spread=1.0, offset=0.0),
        "noisy": dict(modes=everywhere, spread=2.0, offset=0.0),
    }
    rows = []
    for name in CANDIDATES:
        cand = _songs(rng, centres, songs, frames, **settings[name])
        pooled = cand.mean(axis=1)
        rows.append({
            "set": name,
            "fad": frechet_distance(cand.reshape(-1, dim), ref_stats),
            "kad": kernel_distance(pooled, ref_pooled),
            "per_song_fad_mean": float(per_song_frechet(cand, ref_stats).mean()),
            "vendi": vendi_score(pooled),
            "similarity_max": float(similarity_to_set(pooled, ref_pooled).max.mean()),
        })
    return pd.DataFrame(rows).set_index("set")


# ---------------------------------------------------------------- the audio demo
SETS = ("clean", "degraded", "off-prompt")


def _write_prompts(path: Path, files: list[str], captions: list[str]) -> None:
    from ._fileio import atomic_write

    with atomic_write(path) as f:
        f.write(pd.DataFrame({"file": files, "prompt": captions}).to_csv(index=False).encode())


def audio_demo(out_dir: str | os.PathLike[str], *, seed: int = 0, n: int = 24, exemplars: int = 48,
               encoders: tuple[str, ...] = ("synthclap", "mel"), progress: bool = False) -> tuple[pd.DataFrame, Path]:
    """Synthesize an exemplar set and three candidate sets, score them with every metric, plot the results.

    The candidate sets, all prompted with captions:

    * ``clean``: fresh clips of the exemplars' distribution, prompted with their own captions;
    * ``degraded``: the clean clips after one strong degradation each (noise, clipping, detune,
      timing jitter, band-limiting, dropouts in turn), same prompts;
    * ``off-prompt``: other clean clips, prompted with the clean set's captions, so the audio
      is fine but does not match its text.

    Returns the table (one row per set, one column per encoder and metric) and the PNG's path.
    Everything is synthetic and offline; seeds make it reproducible.
    """
    import soundfile as sf

    from . import synth
    from .scoring import score

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    synth.make_corpus(out / "exemplars", exemplars, seed=seed, overwrite=True)
    clean = synth.make_corpus(out / "clean", n, seed=seed + 1, overwrite=True)
    other = synth.make_corpus(out / "off-prompt", n, seed=seed + 2, overwrite=True)
    (out / "degraded").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, name in enumerate(clean["file"]):
        audio, rate = sf.read(out / "clean" / name, dtype="float32")
        kind = synth.DEGRADATIONS[i % len(synth.DEGRADATIONS)]
        sf.write(out / "degraded" / name, synth.degrade(audio, kind, 0.8, rng), rate)
    captions = list(clean["caption"])
    _write_prompts(out / "clean" / "prompts.csv", list(clean["file"]), captions)
    _write_prompts(out / "degraded" / "prompts.csv", list(clean["file"]), captions)
    _write_prompts(out / "off-prompt" / "prompts.csv", list(other["file"]), captions)

    rows = {s: {} for s in SETS}
    for name in encoders:
        from . import encoders as registry

        enc = registry.get(name)
        text = "text" in enc.modalities
        for s in SETS:
            report = score(out / s, out / "exemplars", encoder=enc, prompts=out / s / "prompts.csv" if text else None,
                           cache_dir=out / "cache", progress=progress)
            for metric in ("fad", "per_song_fad_mean", "kad", "vendi", "clap_score", "aesthetics"):
                if metric in report.metrics:
                    rows[s][f"{name}:{metric}"] = report.metrics[metric]
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "set"
    png = plot_table(table, out / "demo.png", title=f"rewardkit demo (synthetic world, seed {seed})")
    return table, png


def plot_table(table: pd.DataFrame, path: str | os.PathLike[str], *, title: str = "") -> Path:
    """One bar chart per column of ``table`` (rows = sets), written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._fileio import atomic_write

    cols = list(table.columns)
    ncols = min(4, len(cols))
    nrows = -(-len(cols) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    colors = plt.cm.tab10.colors
    for ax, col in zip(axes.flat, cols, strict=False):
        ax.bar(range(len(table)), table[col], color=colors[: len(table)])
        ax.set_xticks(range(len(table)), table.index, rotation=20, fontsize=8)
        ax.set_title(col, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
