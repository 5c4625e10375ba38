"""Aesthetics: a small learned head that predicts a 1-5 quality rating from a clip's frame embeddings.

The head is an MLP on statistics over the windows of one file's frame
embeddings (any encoder's): the mean (the pooled clip embedding), and
optionally the per-dimension standard deviation, maximum and minimum over
windows, and the mean absolute first and second differences between
consecutive frames, which see flutter, jitter and pitch wobble that the
averages hide (:func:`frame_statistics`). It is trained from a ratings CSV by
``rewardkit aesthetics train`` (:mod:`rewardkit.training.aesthetics`) and
saved as ``NAME.safetensors`` beside ``NAME.json`` (its constructor
arguments, including the statistics it reads, the fingerprint of the encoder
it was trained on, and the training record); it refuses embeddings of any
other encoder. A sidecar without ``features`` (heads written before they
existed) reads the mean only.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import as_matrix
from .errors import InputError, RewardkitError

ASSET_DIR = Path(__file__).resolve().parent / "assets" / "aesthetics"

STATISTICS = ("mean", "std", "max", "min", "delta", "delta2")
"""Statistics over a file's frames a head can read, each one value per embedding dimension."""


def check_statistics(features: Sequence[str]) -> tuple[str, ...]:
    """``features`` as a tuple of known, distinct :data:`STATISTICS` names (InputError otherwise)."""
    if isinstance(features, str):
        features = features.split(",")
    names = tuple(str(f).strip() for f in features)
    unknown = [f for f in names if f not in STATISTICS]
    if not names or unknown or len(set(names)) != len(names):
        raise InputError(f"features: expected distinct names among {', '.join(STATISTICS)}, got {list(names)}")
    return names


def frame_statistics(frames: Sequence[Any], features: Sequence[str] = ("mean",), *,
                     dim: int | None = None) -> np.ndarray:
    """Per-file statistics over windows, concatenated in the order of ``features``.

    Parameters
    ----------
    frames : sequence of np.ndarray [shape=(n_windows, dim)]
        Each file's frame embeddings (``EmbeddedFile.frames``); at least one window each.
    features : sequence of str
        Names from :data:`STATISTICS`. ``std`` is the population standard
        deviation (0 for a one-window file); ``delta`` the mean of
        ``|x[t+1] - x[t]|`` over consecutive frames, ``delta2`` that of
        ``|x[t+2] - 2 x[t+1] + x[t]|`` (0 when a file has too few frames).
    dim : int, optional
        Required embedding width.

    Returns
    -------
    np.ndarray [shape=(n_files, len(features) * dim)], float64

    Examples
    --------
    >>> frame_statistics([np.array([[0.0, 1.0], [2.0, 3.0]])], ("mean", "std"))
    array([[1., 2., 1., 1.]])
    """
    features = check_statistics(features)
    if isinstance(frames, np.ndarray) and frames.ndim == 2:
        raise InputError(f"frames: expected a list of (n_windows, dim) arrays, one per file, got one array "
                         f"of shape {frames.shape}; wrap a single file's frames in a list")
    rows = []
    for i, f in enumerate(frames):
        x = as_matrix(f, f"frames[{i}]", dim=dim)
        dim = x.shape[1]
        rows.append(np.concatenate([_statistic(x, name) for name in features]))
    if not rows:
        return np.zeros((0, len(features) * (dim or 0)))
    return np.stack(rows)


def _statistic(x: np.ndarray, name: str) -> np.ndarray:
    if name in ("delta", "delta2"):
        order = 1 if name == "delta" else 2
        return np.abs(np.diff(x, n=order, axis=0)).mean(axis=0) if len(x) > order else np.zeros(x.shape[1])
    return {"mean": np.mean, "std": np.std, "max": np.max, "min": np.min}[name](x, axis=0)


def build_head(config: dict[str, Any]):
    import torch
    from torch import nn

    class AestheticsHead(nn.Module):
        """Window statistics -> rating in [1, 5]: standardisation, two GELU layers, a scaled sigmoid.

        ``dim`` is the encoder's embedding width; the input holds one
        ``dim``-wide block per statistic in ``features`` (:func:`frame_statistics`).
        The inputs are standardised per dimension with the training set's mean
        and spread (buffers saved with the weights), not per sample: a
        per-sample LayerNorm would remove the overall level of the embedding,
        which for spectral features is exactly the noise floor a rater hears.
        """

        def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.1,
                     features: Sequence[str] = ("mean",)):
            super().__init__()
            width = dim * len(check_statistics(features))
            self.register_buffer("feature_mean", torch.zeros(width))
            self.register_buffer("feature_std", torch.ones(width))
            self.net = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = (x - self.feature_mean) / self.feature_std
            return 1.0 + 4.0 * torch.sigmoid(self.net(z).squeeze(-1))

    return AestheticsHead(**config)


def head_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights, sidecar json) for a head path given with or without its suffix."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_head(head, config: dict[str, Any], encoder_fingerprint: str, path: str | os.PathLike[str],
              record: dict[str, Any]) -> Path:
    from safetensors.torch import save

    from ._fileio import atomic_write

    weights, sidecar = head_paths(path)
    with atomic_write(weights) as f:
        f.write(save({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}))
    meta = {"class": "AestheticsHead", "config": config, "encoder": encoder_fingerprint, "training": record}
    with atomic_write(sidecar) as f:
        f.write(json.dumps(meta, indent=2, sort_keys=True).encode())
    return weights


class AestheticsPredictor:
    """A trained head, loaded lazily, scoring the frame embeddings of one encoder's files.

    Parameters
    ----------
    path : path
        ``head.safetensors`` (its ``head.json`` beside it).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.weights, self.sidecar = head_paths(path)
        for f in (self.weights, self.sidecar):
            if not f.is_file():
                raise InputError(f"{f}: no such aesthetics head file (train one with `rewardkit aesthetics train`)")
        try:
            meta = json.loads(self.sidecar.read_text())
            self.config, self.encoder = dict(meta["config"]), str(meta["encoder"])
            self.training = meta.get("training", {})
            self.features = tuple(self.config.get("features", ("mean",)))
        except (ValueError, KeyError, TypeError) as exc:
            raise RewardkitError(f"{self.sidecar}: not an aesthetics head description ({exc})") from None
        try:
            check_statistics(self.features)
        except InputError:
            raise RewardkitError(f"{self.sidecar}: head reads statistics {list(self.features)}; this rewardkit "
                                 f"knows {', '.join(STATISTICS)} (a newer rewardkit wrote it?)") from None

    @classmethod
    def default_for(cls, encoder_name: str) -> AestheticsPredictor | None:
        """The head shipped for an encoder (``assets/aesthetics/<name>.safetensors``), if any."""
        path = ASSET_DIR / f"{encoder_name}.safetensors"
        return cls(path) if path.is_file() else None

    @functools.cached_property
    def _head(self):
        from safetensors.torch import load_file

        head = build_head(self.config)
        head.load_state_dict(load_file(str(self.weights)))
        return head.eval()

    def check_encoder(self, fingerprint: str) -> None:
        if fingerprint != self.encoder:
            raise InputError(f"{self.weights}: aesthetics head trained on encoder {self.encoder}, "
                             f"not {fingerprint}; train a head for this encoder")

    def score_frames(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted ratings in [1, 5], float64 [shape=(n_files,)].

        Parameters
        ----------
        frames : sequence of np.ndarray [shape=(n_windows, dim)]
            Each file's frame embeddings from the head's encoder.
        """
        return self._predict(frame_statistics(frames, self.features, dim=int(self.config["dim"])))

    def score_set(self, embedded) -> np.ndarray:
        """Predicted ratings of the files of an :class:`~rewardkit.embedding.EmbeddingSet`, in its order."""
        self.check_encoder(embedded.encoder.fingerprint)
        return self.score_frames([f.frames for f in embedded.files])

    def score(self, pooled: Any) -> np.ndarray:
        """Predicted ratings in [1, 5] for pooled clip embeddings [shape=(n, dim)] (mean-only heads)."""
        if self.features != ("mean",):
            raise InputError(f"{self.weights}: this head reads {'+'.join(self.features)} over each file's "
                             "windows, not the pooled mean alone; call score_frames or score_set")
        return self._predict(as_matrix(pooled, "pooled", dim=int(self.config["dim"])))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        if x.shape[0] == 0:
            return np.zeros(0)
        with torch.inference_mode():
            return self._head(torch.from_numpy(x).float()).double().numpy()
