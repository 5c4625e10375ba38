"""Meta's audiobox-aesthetics predictor, from a checkpoint on disk (optional extra ``rewardkit[audiobox]``).

audiobox-aesthetics (Tjandra et al., 2025) rates audio on four axes:
production quality (PQ), production complexity (PC), content enjoyment (CE)
and content usefulness (CU), each roughly on a 1-10 scale. Its network is a
WavLM-base encoder whose 13 layer outputs are mixed by a learned softmax
weighting per axis, mean-pooled over time, L2-normalised and mapped by a
linear layer per axis; the outputs are de-standardised with the targets'
mean and spread stored in the checkpoint.

This module builds that network with the package's own model code
(``audiobox_aesthetics.model.aes.AesMultiOutput``, PyPI
``audiobox-aesthetics==0.0.4``) and loads the weights from a path the user
gives; it never downloads anything (the package's own loader falls back to
the Hugging Face hub). Inference follows the package's ``AesPredictor``:
mono 16 kHz audio cut into 10 s windows every 10 s, the last one zero-padded
and masked, window predictions averaged with weights proportional to the
window's length of real audio.

Two checkpoint layouts are read:

* the released ``checkpoint.pt`` (a torch pickle of ``state_dict`` with
  ``model.`` prefixes, ``model_cfg`` and ``target_transform``), read with
  ``torch.load(weights_only=True)``;
* a Hugging Face folder (``model.safetensors`` + ``config.json``, as
  ``AesMultiOutput.save_pretrained`` writes it), or the ``.safetensors``
  file of such a folder.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .audio import LoadOptions, load_audio
from .errors import InputError, MissingDependencyError, RewardkitError

AXES = ("CE", "CU", "PC", "PQ")
"""The four axes, in the order of the columns :meth:`AudioboxAesthetics.score_audio` returns."""
SAMPLE_RATE = 16000
WINDOW_SECONDS = 10
MODEL_CFG_KEYS = ("proj_num_layer", "proj_ln", "proj_act_fn", "proj_dropout", "nth_layer",
                  "use_weighted_layer_sum", "precision", "normalize_embed", "output_dim")


def _model_class():
    try:
        from audiobox_aesthetics.model.aes import AesMultiOutput
    except ImportError as exc:
        raise MissingDependencyError(f"audiobox-aesthetics is not installed ({exc}); "
                                     "pip install 'rewardkit[audiobox]'") from None
    return AesMultiOutput


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(constructor arguments, state dict) of an audiobox-aesthetics checkpoint; see the module docstring."""
    import torch

    path = Path(path).expanduser()
    if path.is_dir() or path.suffix == ".safetensors":
        from safetensors.torch import load_file

        folder = path if path.is_dir() else path.parent
        weights = path if path.is_file() else folder / "model.safetensors"
        for f in (weights, folder / "config.json"):
            if not f.is_file():
                raise InputError(f"{path}: audiobox-aesthetics folder has no {f.name}; pass the released "
                                 "checkpoint.pt or a save_pretrained folder")
        try:
            config = json.loads((folder / "config.json").read_text())
            state = load_file(str(weights))
        except (OSError, ValueError) as exc:
            raise RewardkitError(f"{path}: unreadable audiobox-aesthetics checkpoint ({exc})") from None
    elif path.is_file():
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            config = {k: ckpt["model_cfg"][k] for k in MODEL_CFG_KEYS}
            config["target_transform"] = ckpt["target_transform"]
            state = {re.sub(r"^model\.", "", k): v for k, v in ckpt["state_dict"].items()}
        except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
            raise RewardkitError(f"{path}: not an audiobox-aesthetics checkpoint.pt ({type(exc).__name__}: "
                                 f"{exc})") from None
    else:
        raise InputError(f"{path}: no such audiobox-aesthetics checkpoint (download checkpoint.pt from the "
                         "project's release page on a machine with network access)")
    transform = config.get("target_transform")
    if not isinstance(transform, dict) or any(a not in transform for a in AXES):
        raise RewardkitError(f"{path}: checkpoint has no target_transform for the axes {', '.join(AXES)}")
    return config, state


def window_batch(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """10 s windows of a mono 16 kHz clip, as the package's ``make_inference_batch`` cuts them.

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, 160000)], float32, zero-padded
    masks : np.ndarray [shape=(n_windows, 160000)], bool, True on real samples
    weights : np.ndarray [shape=(n_windows,)], the fraction of each window that is real audio
    """
    size = WINDOW_SECONDS * SAMPLE_RATE
    starts = range(0, len(audio), size)
    windows = np.zeros((len(starts), size), np.float32)
    masks = np.zeros((len(starts), size), bool)
    weights = np.zeros(len(starts))
    for i, start in enumerate(starts):
        part = audio[start:start + size]
        windows[i, :len(part)] = part
        masks[i, :len(part)] = True
        weights[i] = len(part) / size
    return windows, masks, weights


class AudioboxAesthetics:
    """The audiobox-aesthetics predictor, built from a local checkpoint on first use.

    Parameters
    ----------
    checkpoint : path
        ``checkpoint.pt`` as released, or a ``save_pretrained`` folder.
    device : str
        Torch device (default ``"cpu"``; the caller owns the device).
    precision : {"32", "bf16", "16"}, optional
        Overrides the checkpoint's compute precision (the release says bf16,
        which on a CPU is slow and not bit-reproducible across machines).
    batch_size : int
        10 s windows per forward pass.

    Examples
    --------
    >>> abx = AudioboxAesthetics("checkpoint.pt")                      # doctest: +SKIP
    >>> abx.score_files(["a.wav", "b.wav"])                           # doctest: +SKIP
        file    CE    CU    PC    PQ
    0  a.wav  5.91  6.72  2.87  7.11
    """

    axes = AXES
    higher_is_better = True

    def __init__(self, checkpoint: str | os.PathLike[str], *, device: str = "cpu", precision: str | None = None,
                 batch_size: int = 4):
        self.checkpoint = Path(checkpoint).expanduser()
        if not self.checkpoint.exists():
            raise InputError(f"{self.checkpoint}: no such audiobox-aesthetics checkpoint")
        if precision not in (None, "32", "bf16", "16"):
            raise InputError(f"precision: expected '32', 'bf16' or '16', got {precision!r}")
        self.device, self.precision, self.batch_size = device, precision, int(batch_size)

    @functools.cached_property
    def model(self):
        """The ``AesMultiOutput`` module in eval mode on ``device``."""
        config, state = read_checkpoint(self.checkpoint)
        if self.precision is not None:
            config["precision"] = self.precision
        model = _model_class()(**config)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RewardkitError(f"{self.checkpoint}: weights do not fit the audiobox-aesthetics network "
                                 f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return model.to(self.device).eval()

    def score_audio(self, audio: Sequence[np.ndarray]) -> np.ndarray:
        """The four axes per clip, float64 [shape=(n_clips, 4)], columns in :data:`AXES` order.

        Parameters
        ----------
        audio : sequence of np.ndarray [shape=(n_samples,)]
            Mono clips at 16 kHz (see :meth:`score_files` for files at any rate).
        """
        import torch

        model = self.model
        transform = model.target_transform
        out = np.zeros((len(audio), len(AXES)))
        for c, clip in enumerate(audio):
            clip = np.asarray(clip, dtype=np.float32)
            if clip.ndim != 1 or clip.size == 0 or not np.isfinite(clip).all():
                raise InputError(f"audio[{c}]: expected a non-empty finite mono array, got shape {clip.shape}")
            windows, masks, weights = window_batch(clip)
            preds = np.zeros((len(windows), len(AXES)))
            for start in range(0, len(windows), self.batch_size):
                part = slice(start, start + self.batch_size)
                batch = {"wav": torch.from_numpy(windows[part][:, None]).to(self.device),
                         "mask": torch.from_numpy(masks[part][:, None]).to(self.device)}
                with torch.inference_mode():
                    raw = model(batch)
                for j, axis in enumerate(AXES):
                    t = transform[axis]
                    preds[part, j] = raw[axis].double().cpu().numpy() * t["std"] + t["mean"]
            out[c] = weights @ preds / weights.sum()
        return out

    def score_files(self, paths: Sequence[str | os.PathLike[str]], *,
                    options: LoadOptions = LoadOptions()) -> pd.DataFrame:
        """A table ``file, CE, CU, PC, PQ``, one row per file (decoded to mono 16 kHz by rewardkit)."""
        scores = self.score_audio([load_audio(p, SAMPLE_RATE, options=options) for p in paths])
        table = pd.DataFrame(scores, columns=list(AXES))
        table.insert(0, "file", [Path(p).as_posix() for p in paths])
        return table
