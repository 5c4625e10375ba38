"""Training an aesthetics head from a ratings CSV (``file,rating``) on any encoder's frame embeddings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..aesthetics import build_head, check_statistics, frame_statistics, save_head
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


def split_indices(n: int, seed: int, heldout_fraction: float = 0.2,
                  validation_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, held-out) indices of ``n`` clips from one seeded permutation.

    The held-out clips are the first ``heldout_fraction`` of the permutation; the
    validation clips the next ``validation_fraction`` of the rest.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(2, round(heldout_fraction * n))
    test, rest = order[:n_test], order[n_test:]
    n_val = max(2, round(validation_fraction * len(rest)))
    return rest[n_val:], rest[:n_val], test


def fit_head(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, *, dim: int,
             features: Sequence[str] = ("mean",), seed: int = 0, epochs: int = 300, hidden: int = 128,
             dropout: float = 0.1, lr: float = 3e-3, weight_decay: float = 1e-2):
    """Fit a head on ``x[train]`` [shape=(n, len(features) * dim)]; return (head, config, best validation PLCC).

    Full-batch AdamW on the mean squared error; the weights kept are those of
    the epoch with the best PLCC on ``val``, so any other clips stay unseen.
    """
    import torch

    torch.manual_seed(seed)
    config = {"dim": int(dim), "hidden": int(hidden), "dropout": float(dropout), "features": list(features)}
    head = build_head(config)
    x32 = x.astype(np.float32)
    head.feature_mean.copy_(torch.from_numpy(x32[train].mean(axis=0)))
    head.feature_std.copy_(torch.from_numpy(x32[train].std(axis=0) + 1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy(x32), torch.from_numpy(y.astype(np.float32))
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
        if plcc > best or best_state is None:
            best, best_state = plcc, {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    return head.eval(), config, best


def train_head(ratings_csv: str | os.PathLike[str], encoder: Encoder, out: str | os.PathLike[str], *,
               seed: int = 0, heldout_fraction: float = 0.2, epochs: int = 300, hidden: int = 128,
               dropout: float = 0.1, lr: float = 3e-3, weight_decay: float = 1e-2,
               features: Sequence[str] = ("mean",), cache: EmbeddingCache | None = None,
               command: str = "") -> dict[str, Any]:
    """Fit the head on (1 - heldout_fraction) of the clips; report PLCC and SRCC on the rest.

    The split is a seeded permutation (:func:`split_indices`). A further 15 %
    of the training clips is a validation set that picks the epoch
    (:func:`fit_head`), so the held-out figures are measured on clips that
    chose nothing. ``features`` names the statistics over each file's windows
    that the head reads (:func:`rewardkit.aesthetics.frame_statistics`).
    """
    import torch

    features = check_statistics(features)
    ratings_csv = Path(ratings_csv)
    table = read_ratings(ratings_csv)
    root = ratings_csv.parent
    embedded = embed_files([root / f for f in table["file"]], encoder, root=root, cache=cache)
    if embedded.errors:
        raise InputError(f"{ratings_csv}: {len(embedded.errors)} rated file(s) failed, e.g. {embedded.errors[0].error}")
    x = frame_statistics([f.frames for f in embedded.files], features, dim=encoder.dim)
    y = table["rating"].to_numpy(np.float64)
    train, val, test = split_indices(len(y), seed, heldout_fraction)
    head, config, val_plcc = fit_head(x, y, train, val, dim=encoder.dim, features=features, seed=seed,
                                      epochs=epochs, hidden=hidden, dropout=dropout, lr=lr,
                                      weight_decay=weight_decay)
    with torch.no_grad():
        xt = torch.from_numpy(x.astype(np.float32))
        pred = head(xt[test]).numpy().astype(np.float64)
        train_pred = head(xt[train]).numpy().astype(np.float64)
    record = {
        "command": command, "seed": seed, "ratings": str(ratings_csv), "clips": len(y),
        "train": len(train), "validation": len(val), "heldout": len(test), "epochs": epochs,
        "lr": lr, "weight_decay": weight_decay, "validation_plcc": val_plcc,
        "heldout_plcc": float(stats.pearsonr(pred, y[test])[0]),
        "heldout_srcc": float(stats.spearmanr(pred, y[test])[0]),
        "heldout_mae": float(np.abs(pred - y[test]).mean()),
        "train_plcc": float(stats.pearsonr(train_pred, y[train])[0]),
    }
    save_head(head, config, encoder.fingerprint(), out, record)
    return record
