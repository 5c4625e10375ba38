"""``rewardkit.score``: a directory of generated audio against a reference, every metric at once.

Which embeddings each metric sees:

* ``fad``: all frames of all generated files vs the reference frame stats (dataset FAD);
* ``per_song_fad``: each file's frames vs the reference stats (a one-frame file is
  treated as a point mass, see :func:`rewardkit.per_song_frechet`); mean and median;
* ``kad``: clip embeddings (the mean of a file's frames) vs the reference items,
  unbiased MMD^2 with the RBF kernel (needs item embeddings in the reference);
* ``vendi``: clip embeddings, cosine kernel, q = 1;
* ``clap_score``: cosine of each clip embedding with its prompt's text embedding
  (cross-modal encoders, when prompts are given);
* ``ref_similarity``: per file, the cosine similarity to the nearest reference item;
* ``aesthetics``: the predicted 1-5 rating of an aesthetics head on each file's frame embeddings
  (the encoder's shipped head, or ``aesthetics=PATH``), and its mean.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import encoders as encoder_registry
from .aesthetics import AestheticsPredictor
from .audio import LoadOptions
from .cache import EmbeddingCache
from .embedding import EmbeddingSet, FileError, embed_directory
from .encoders.base import Encoder
from .errors import InputError
from .metrics import cosine_scores, frechet_distance, kernel_distance, per_song_frechet, similarity_to_set, vendi_score
from .reference import Reference, build_reference


@dataclass
class ScoreReport:
    """Dataset metrics, one row per scored file, the files that failed, and the encoder used."""

    metrics: dict[str, float]
    per_song: pd.DataFrame
    errors: list[FileError]
    encoder: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        rows = [{k: _json_value(v) for k, v in row.items()} for row in self.per_song.to_dict(orient="records")]
        return {"metrics": {k: _json_value(v) for k, v in self.metrics.items()}, "per_song": rows,
                "errors": [{"file": e.file, "error": e.error} for e in self.errors],
                "encoder": self.encoder, "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def _json_value(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def read_prompts(path: str | os.PathLike[str]) -> dict[str, str]:
    """A ``file,prompt`` manifest (CSV with a header) as ``{file: prompt}``."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read the prompts manifest ({exc})") from None
    missing = {"file", "prompt"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: the prompts manifest needs columns file,prompt "
                         f"(missing {', '.join(sorted(missing))})")
    if frame.empty:
        raise InputError(f"{path}: the prompts manifest is empty")
    dup = frame["file"][frame["file"].duplicated()]
    if not dup.empty:
        raise InputError(f"{path}: file {dup.iloc[0]!r} is listed twice")
    return dict(zip(frame["file"].str.strip(), frame["prompt"], strict=True))


def _match_prompts(files: list[str], prompts: Mapping[str, str]) -> dict[str, str]:
    """Pair files with prompts by relative path, else by unique file name; never by order."""
    by_name: dict[str, list[str]] = {}
    for key in prompts:
        by_name.setdefault(Path(key).name, []).append(key)
    matched = {}
    for f in files:
        if f in prompts:
            matched[f] = prompts[f]
        elif len(by_name.get(Path(f).name, [])) == 1:
            matched[f] = prompts[by_name[Path(f).name][0]]
    return matched


def score(gen_dir: str | os.PathLike[str], ref: str | os.PathLike[str] | Reference, *,
          encoder: str | Encoder = "clap", encoder_options: dict[str, Any] | None = None,
          prompts: str | os.PathLike[str] | Mapping[str, str] | None = None,
          cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
          options: LoadOptions = LoadOptions(), aesthetics: str | os.PathLike[str] | None = None,
          progress: bool = False) -> ScoreReport:
    """Score every audio file under ``gen_dir`` against ``ref``.

    Parameters
    ----------
    gen_dir : path
        Directory of generated audio (nested folders allowed; non-audio files ignored).
    ref : path or Reference
        An audio directory, a stats file from ``rewardkit ref build`` (``.npz``),
        or a captions file (``.txt``, or ``.csv`` with a caption column) for a
        cross-modal encoder.
    encoder : str or Encoder
        A registered encoder name (built with ``encoder_options``) or an instance.
    prompts : path or mapping, optional
        ``file -> prompt`` (a ``file,prompt`` CSV): enables ``clap_score``. Files
        are matched by relative path, else by unique file name.
    cache_dir, use_cache :
        Embedding cache location (default ``$REWARDKIT_CACHE`` or the user cache) and switch.
    aesthetics : path, optional
        An aesthetics head (``rewardkit aesthetics train``) for this encoder. Default: the head
        shipped for the encoder, when there is one and it was trained on this very encoder.

    Returns
    -------
    ScoreReport
        Raises :class:`InputError` when nothing could be scored.
    """
    enc = encoder if isinstance(encoder, Encoder) else encoder_registry.get(encoder, **(encoder_options or {}))
    cache = EmbeddingCache(cache_dir) if use_cache else None
    fingerprint = enc.fingerprint()
    if aesthetics is not None:
        head = AestheticsPredictor(aesthetics)
        head.check_encoder(fingerprint)
    else:
        head = AestheticsPredictor.default_for(enc.name)
        if head is not None and head.encoder != fingerprint:
            head = None
    reference = ref if isinstance(ref, Reference) else build_reference(
        ref, enc, cache=cache, options=options, progress=progress)
    reference.check_encoder(fingerprint)

    gen = embed_directory(gen_dir, enc, cache=cache, options=options, progress=progress)
    if not gen.files:
        what = (f"{len(gen.errors)} file(s) failed, e.g. {gen.errors[0].error}" if gen.errors
                else "no audio files found")
        raise InputError(f"{gen_dir}: nothing could be scored ({what})")
    prompt_map = None
    if prompts is not None:
        prompt_map = read_prompts(prompts) if not isinstance(prompts, Mapping) else dict(prompts)
    return _report(gen, reference, enc, prompt_map, head)


def _report(gen: EmbeddingSet, reference: Reference, enc: Encoder,
            prompts: dict[str, str] | None, head: AestheticsPredictor | None = None) -> ScoreReport:
    notes: list[str] = []
    metrics: dict[str, float] = {"files": float(len(gen.files)), "failed": float(len(gen.errors))}
    pooled = gen.pooled()
    frames = gen.frames()

    if frames.shape[0] >= 2:
        metrics["fad"] = frechet_distance(frames, reference.stats)
    else:
        notes.append("fad: needs at least 2 generated frames")
    per_song = per_song_frechet([f.frames for f in gen.files], reference.stats, single_frame="point")
    metrics["per_song_fad_mean"] = float(per_song.mean())
    metrics["per_song_fad_median"] = float(np.median(per_song))
    table = {"file": [f.file for f in gen.files], "frames": [f.frames.shape[0] for f in gen.files],
             "per_song_fad": per_song}

    items = reference.items
    if items is not None and items.shape[0] >= 2 and pooled.shape[0] >= 2:
        try:
            metrics["kad"] = kernel_distance(pooled, items)
        except InputError as exc:
            notes.append(f"kad: {exc}")
    else:
        notes.append("kad: needs >= 2 generated files and a reference with item embeddings")
    if items is not None:
        table["ref_similarity"] = similarity_to_set(pooled, items).max
    try:
        metrics["vendi"] = vendi_score(pooled)
    except InputError as exc:
        notes.append(f"vendi: {exc}")

    if head is not None:
        table["aesthetics"] = head.score_set(gen)
        metrics["aesthetics"] = float(np.mean(table["aesthetics"]))

    if prompts is not None:
        if "text" not in enc.modalities:
            raise InputError(f"prompts: encoder {enc.name!r} has no text tower, so it cannot give a CLAP score")
        matched = _match_prompts(table["file"], prompts)
        clap = np.full(len(gen.files), np.nan)
        if matched:
            idx = [i for i, f in enumerate(table["file"]) if f in matched]
            text = np.asarray(enc.embed_text([matched[table["file"][i]] for i in idx]), dtype=np.float64)
            clap[idx] = cosine_scores(pooled[idx], text)
            metrics["clap_score"] = float(np.mean(clap[idx]))
        unmatched = len(gen.files) - len(matched)
        if unmatched:
            notes.append(f"clap_score: {unmatched} file(s) have no prompt in the manifest")
        table["prompt"] = [matched.get(f, "") for f in table["file"]]
        table["clap_score"] = clap
    return ScoreReport(metrics, pd.DataFrame(table), gen.errors, enc.info().to_dict(), notes)
