"""Training an aesthetics head from a ratings CSV (``file,rating``) on any encoder's clip embeddings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..aesthetics import build_head, save_head
from ..cache import EmbeddingCache
from ..embedding import embed_files
from ..encoders.base import Encoder
from ..errors import InputError


def read_ratings(path: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"file": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ratings ({exc})") from None
    if not {"file", "rating"} <= set(frame.columns):
        raise InputError(f"{path}: needs columns file,rating, has {list(frame.columns)}")
    bad = frame[~np.isfinite(pd.to_numeric(frame["rating"], errors="coerce"))]
    if not bad.empty:
        raise InputError(f"{path}: rating of {bad['file'].iloc[0]!r} is not a number")
    if len(frame) < 10:
        raise InputError(f"{path}: {len(frame)} ratings; training a head needs at least 10")
    return frame


def train_head(ratings_csv: str | os.PathLike[str], encoder: Encoder, out: str | os.PathLike[str], *,
               seed: int = 0, heldout_fraction: float = 0.2, epochs: int = 300, hidden: int = 128,
               lr: float = 3e-3, cache: EmbeddingCache | None = None, command: str = "") -> dict[str, Any]:
    """Fit the head on (1 - heldout_fraction) of the clips; report PLCC and SRCC on the rest.

    The split is a seeded permutation. A further 15 % of the training clips is a
    validation set: training is full-batch AdamW on the mean squared error,
    keeping the weights of the epoch with the best validation PLCC, so the
    held-out figures are measured on clips that chose nothing.
    """
    import torch

    ratings_csv = Path(ratings_csv)
    table = read_ratings(ratings_csv)
    root = ratings_csv.parent
    embedded = embed_files([root / f for f in table["file"]], encoder, root=root, cache=cache)
    if embedded.errors:
        raise InputError(f"{ratings_csv}: {len(embedded.errors)} rated file(s) failed, e.g. {embedded.errors[0].error}")
    x = embedded.pooled().astype(np.float32)
    y = table["rating"].to_numpy(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = max(2, round(heldout_fraction * len(y)))
    test, rest = order[:n_test], order[n_test:]
    n_val = max(2, round(0.15 * len(rest)))
    val, train = rest[:n_val], rest[n_val:]
    torch.manual_seed(seed)
    config = {"dim": int(x.shape[1]), "hidden": hidden}
    head = build_head(config)
    head.feature_mean.copy_(torch.from_numpy(x[train].mean(axis=0)))
    head.feature_std.copy_(torch.from_numpy(x[train].std(axis=0) + 1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    best, best_state = -np.inf, None
    for _ in range(epochs):
        head.train()
        loss = torch.nn.functional.mse_loss(head(xt[train]), yt[train])
        opt.zero_grad()
        loss.backward()
        opt.step()
        head.eval()
        with torch.no_grad():
            pred = head(xt[val]).numpy()
        plcc = float(np.corrcoef(pred, y[val])[0, 1]) if pred.std() > 0 else -np.inf
        if plcc > best:
            best, best_state = plcc, {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        pred = head(xt[test]).numpy().astype(np.float64)
        train_pred = head(xt[train]).numpy().astype(np.float64)
    record = {
        "command": command, "seed": seed, "ratings": str(ratings_csv), "clips": len(y),
        "train": len(train), "validation": len(val), "heldout": len(test), "epochs": epochs,
        "heldout_plcc": float(stats.pearsonr(pred, y[test])[0]),
        "heldout_srcc": float(stats.spearmanr(pred, y[test])[0]),
        "heldout_mae": float(np.abs(pred - y[test]).mean()),
        "train_plcc": float(stats.pearsonr(train_pred, y[train])[0]),
    }
    save_head(head, config, encoder.fingerprint(), out, record)
    return record
