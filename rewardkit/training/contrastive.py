"""Contrastive training and evaluation of the ``synthclap`` audio-text encoder.

Training pairs each corpus clip with its caption (several wordings when the
corpus provides them) and minimises the symmetric InfoNCE loss of CLIP/CLAP
between clip embeddings (the mean of a few of the clip's window embeddings)
and projected MiniLM caption embeddings, with a learned temperature. The
MiniLM tower is frozen, so caption embeddings are computed once.
Everything is seeded; on the CPU a run is reproducible bit for bit.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..audio import frame_windows, load_audio
from ..encoders.base import Windowing
from ..encoders.synthclap import HOP, SAMPLE_RATE, WINDOW, build_net, frontend, logmel, save_weights
from ..errors import InputError


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    minutes: float = 15.0          # wall-clock budget for the optimisation loop
    max_steps: int = 4000
    batch_clips: int = 128
    windows_per_clip: int = 2
    lr: float = 2e-3
    weight_decay: float = 0.05
    channels: int = 128
    dim: int = 256
    dropout: float = 0.1


def read_corpus(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """metadata.csv of a corpus folder (``rewardkit synth make``): file, caption, attributes..."""
    path = Path(folder) / "metadata.csv"
    if not path.is_file():
        raise InputError(f"{folder}: no metadata.csv (make a corpus with `rewardkit synth make DIR`)")
    meta = pd.read_csv(path, dtype={"file": str, "caption": str}, keep_default_na=False)
    for column in ("file", "caption"):
        if column not in meta.columns:
            raise InputError(f"{path}: needs a '{column}' column")
    if meta.empty:
        raise InputError(f"{path}: lists no clips")
    return meta


def clip_logmels(folder: Path, files: list[str], device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Log-mel of every window of every clip: (windows, n_mels, frames) float32, and each clip's window offsets."""
    import torch

    basis, hann = frontend(device)
    windowing = Windowing(WINDOW, HOP, "repeat")
    chunks, offsets = [], [0]
    with torch.inference_mode():
        for name in files:
            audio = load_audio(folder / name, SAMPLE_RATE)
            wins = np.stack(list(frame_windows(iter([audio]), windowing)))
            chunks.append(logmel(torch.from_numpy(wins).to(device), basis, hann).cpu().numpy())
            offsets.append(offsets[-1] + wins.shape[0])
    return np.concatenate(chunks).astype(np.float32), np.array(offsets)


def caption_variants(meta: pd.DataFrame) -> list[list[str]]:
    """Each clip's captions: the ``caption`` column plus any ``caption_*`` alternative wordings."""
    extra = [c for c in meta.columns if c.startswith("caption_")]
    return [[row["caption"]] + [row[c] for c in extra if row[c]] for _, row in meta.iterrows()]


def train_synthclap(data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                    config: TrainConfig = TrainConfig(), heldout_dir: str | os.PathLike[str] | None = None,
                    command: str = "", log=print) -> dict[str, Any]:
    """Train the encoder on a corpus folder and write ``model.safetensors`` + ``config.json`` to ``out_dir``.

    Returns the training record (also stored in config.json), including the
    held-out retrieval figures when ``heldout_dir`` is given.
    """
    import torch

    from ..text import MiniLM

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    meta = read_corpus(data_dir)
    mels, offsets = clip_logmels(data_dir, list(meta["file"]))
    log(f"train-encoder: {len(meta)} clips, {mels.shape[0]} windows, log-mel in {time.perf_counter() - t0:.0f} s")
    variants = caption_variants(meta)
    flat = [c for v in variants for c in v]
    text = MiniLM().embed(flat)
    starts = np.cumsum([0] + [len(v) for v in variants])
    log(f"train-encoder: {len(flat)} captions embedded with MiniLM, {time.perf_counter() - t0:.0f} s")

    net_config = {"channels": config.channels, "dim": config.dim, "dropout": config.dropout}
    net = build_net(net_config)
    frames = mels.transpose(0, 2, 1).reshape(-1, mels.shape[1])
    net.band_mean.copy_(torch.from_numpy(frames.mean(0)))
    net.band_std.copy_(torch.from_numpy(frames.std(0) + 1e-3))
    mels_t, text_t = torch.from_numpy(mels), torch.from_numpy(text)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_clips = len(meta)
    budget = config.minutes * 60
    loop_start = time.perf_counter()
    step, losses = 0, []
    net.train()
    while step < config.max_steps and time.perf_counter() - loop_start < budget:
        # Cosine decay over the expected number of steps (re-estimated from the pace so far).
        elapsed = time.perf_counter() - loop_start
        pace = elapsed / step if step else 1.0
        expected = min(config.max_steps, max(step + 1, int(budget / max(pace, 1e-6))))
        for g in opt.param_groups:
            g["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / expected)))
        clips = rng.choice(n_clips, size=min(config.batch_clips, n_clips), replace=False)
        rows, owner = [], []
        for j, c in enumerate(clips):
            lo, hi = offsets[c], offsets[c + 1]
            pick = rng.choice(np.arange(lo, hi), size=min(config.windows_per_clip, hi - lo), replace=False)
            rows.extend(pick.tolist())
            owner.extend([j] * len(pick))
        owner_t = torch.tensor(owner)
        win = net.audio_embed(mels_t[rows])
        clip = torch.zeros(len(clips), win.shape[1]).index_add_(0, owner_t, win)
        clip = torch.nn.functional.normalize(clip / torch.bincount(owner_t).unsqueeze(1), dim=-1)
        caption_rows = [starts[c] + rng.integers(starts[c + 1] - starts[c]) for c in clips]
        txt = net.text_embed(text_t[caption_rows])
        scale = net.logit_scale.exp().clamp(max=100.0)
        logits = scale * clip @ txt.T
        target = torch.arange(len(clips))
        loss = (torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            log(f"train-encoder: step {step}, loss {np.mean(losses[-50:]):.3f}, "
                f"{time.perf_counter() - loop_start:.0f} s")
    net.eval()
    record: dict[str, Any] = {
        "command": command, "config": asdict(config), "clips": n_clips, "windows": int(mels.shape[0]),
        "steps": step, "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "train_seconds": round(time.perf_counter() - t0, 1), "data": str(data_dir),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(net, net_config, out_dir, record)
    if heldout_dir is not None:
        from ..encoders.synthclap import SynthClapEncoder

        trained = SynthClapEncoder(weights=out_dir, device="cpu")
        record["heldout"] = evaluate_retrieval(trained, heldout_dir, seed=config.seed)
        record["zero_shot"] = zero_shot_accuracy(trained, heldout_dir)
        save_weights(net, net_config, out_dir, record)
    return record


def evaluate_retrieval(encoder, folder: str | os.PathLike[str], *, candidates: int = 100, seed: int = 0,
                       draws: int = 10) -> dict[str, float]:
    """Text-to-audio recall@1 and @5 among ``candidates`` clips, averaged over ``draws`` random candidate sets.

    Also the caption-audio cosine of matched pairs vs shuffled pairs. Chance recall@1 is ``1 / candidates``.
    """
    from ..embedding import embed_files

    folder = Path(folder)
    meta = read_corpus(folder)
    if len(meta) < candidates:
        raise InputError(f"{folder}: has {len(meta)} clips, fewer than the {candidates} candidates asked for")
    embedded = embed_files([folder / f for f in meta["file"]], encoder, root=folder)
    if embedded.errors:
        raise InputError(f"{folder}: {embedded.errors[0].error}")
    audio = embedded.pooled()
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    text = np.asarray(encoder.embed_text(list(meta["caption"])), dtype=np.float64)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    r1, r5 = [], []
    for _ in range(draws):
        idx = rng.choice(len(meta), size=candidates, replace=False)
        sims = text[idx] @ audio[idx].T                     # caption i vs clip j
        rank = (sims > np.diag(sims)[:, None]).sum(axis=1)  # clips scoring above the true one
        r1.append(float((rank == 0).mean()))
        r5.append(float((rank < 5).mean()))
    matched = np.einsum("ij,ij->i", text, audio)
    shuffled = np.einsum("ij,ij->i", text, audio[rng.permutation(len(meta))])
    return {"recall@1": float(np.mean(r1)), "recall@5": float(np.mean(r5)), "chance@1": 1.0 / candidates,
            "matched_cosine": float(matched.mean()), "shuffled_cosine": float(shuffled.mean()),
            "clips": len(meta)}


#: Zero-shot probes: for each attribute, a short description of each value (phrasings of the corpus' captions).
ZERO_SHOT_PROMPTS: dict[str, dict[str, str]] = {
    "lead": {"additive": "an additive synth melody", "fm": "an FM bell melody", "pluck": "a plucked string melody"},
    "mode": {"major": "a piece in a major key", "minor": "a piece in a minor key", "dorian": "a piece in dorian mode"},
    "tempo_class": {"slow": "a slow piece", "medium": "a medium-tempo piece", "fast": "a fast piece"},
    "drums": {"none": "music with no drums", "steady": "music over a steady four-on-the-floor kick",
              "backbeat": "music over a backbeat", "busy": "music over busy drums"},
    "register": {"low": "a low-register melody", "mid": "a mid-register melody", "high": "a high-register melody"},
    "brightness": {"dark": "a dark, mellow sound", "bright": "a bright, brilliant sound"},
    "dynamics": {"soft": "soft, quiet music", "medium": "music at a moderate level", "loud": "loud, forceful music"},
}


def zero_shot_accuracy(encoder, folder: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Per attribute: accuracy of picking the value whose description is most similar to the clip, and chance.

    Attributes missing from the corpus metadata are skipped.
    """
    from ..embedding import embed_files

    folder = Path(folder)
    meta = read_corpus(folder)
    embedded = embed_files([folder / f for f in meta["file"]], encoder, root=folder)
    if embedded.errors:
        raise InputError(f"{folder}: {embedded.errors[0].error}")
    audio = embedded.pooled()
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    out = {}
    for attribute, prompts in ZERO_SHOT_PROMPTS.items():
        if attribute not in meta.columns:
            continue
        values = list(prompts)
        text = np.asarray(encoder.embed_text([prompts[v] for v in values]), dtype=np.float64)
        text /= np.linalg.norm(text, axis=1, keepdims=True)
        guess = np.array(values)[np.argmax(audio @ text.T, axis=1)]
        truth = meta[attribute].astype(str).to_numpy()
        majority = float(pd.Series(truth).value_counts(normalize=True).iloc[0])
        out[attribute] = {"accuracy": float((guess == truth).mean()), "chance": 1.0 / len(values),
                          "majority": majority}
    return out
