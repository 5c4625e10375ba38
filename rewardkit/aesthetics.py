"""Aesthetics: a small learned head that predicts a 1-5 quality rating from a clip embedding.

The head is an MLP on any encoder's pooled clip embedding (the mean of a
file's frames), trained from a ratings CSV by ``rewardkit aesthetics train``
(:mod:`rewardkit.training.aesthetics`). It is saved as ``NAME.safetensors``
beside ``NAME.json`` (its constructor arguments, the fingerprint of the
encoder it was trained on, and the training record); it refuses embeddings
of any other encoder.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import as_matrix
from .errors import InputError, RewardkitError

ASSET_DIR = Path(__file__).resolve().parent / "assets" / "aesthetics"


def build_head(config: dict[str, Any]):
    import torch
    from torch import nn

    class AestheticsHead(nn.Module):
        """Pooled embedding -> rating in [1, 5]: standardisation, two GELU layers, a scaled sigmoid.

        The inputs are standardised per dimension with the training set's mean
        and spread (buffers saved with the weights), not per sample: a
        per-sample LayerNorm would remove the overall level of the embedding,
        which for spectral features is exactly the noise floor a rater hears.
        """

        def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.1):
            super().__init__()
            self.register_buffer("feature_mean", torch.zeros(dim))
            self.register_buffer("feature_std", torch.ones(dim))
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
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
    """A trained head, loaded lazily, scoring pooled embeddings of one encoder.

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
        except (ValueError, KeyError, TypeError) as exc:
            raise RewardkitError(f"{self.sidecar}: not an aesthetics head description ({exc})") from None

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

    def score(self, pooled: Any) -> np.ndarray:
        """Predicted ratings in [1, 5] for clip embeddings [shape=(n, dim)]."""
        import torch

        x = as_matrix(pooled, "pooled", dim=int(self.config["dim"]))
        with torch.inference_mode():
            return self._head(torch.from_numpy(x).float()).double().numpy()
