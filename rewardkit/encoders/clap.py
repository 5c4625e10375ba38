"""``clap``: LAION-CLAP audio (and text) embeddings, offline and batched.

The model code is laion-clap's own (``clap_module``: HTS-AT audio tower, RoBERTa
or CLIP-style text tower, projection heads); this module only drives it in a
way that is deterministic, batched and never touches the network:

* The top-level ``laion_clap`` package is never imported. Importing it runs
  ``laion_clap/training/data.py``, which downloads three Hugging Face
  tokenizers at import time (and, offline, retries for minutes), and its
  ``__init__`` appends its own folder to ``sys.path``. Instead the inner
  ``clap_module`` package is loaded straight from laion-clap's folder and
  registered under the name laion-clap's code imports it by.
* Nothing is downloaded. Weights come from a local checkpoint (``ckpt=`` or
  ``$REWARDKIT_CLAP_CKPT``); the RoBERTa text tower is built from a config and
  filled from the checkpoint instead of ``RobertaModel.from_pretrained``; the
  RoBERTa tokenizer is read from a local folder only (``tokenizer=`` or
  ``$REWARDKIT_CLAP_TOKENIZER``).
* Windows are always exactly 10 s (480 000 samples at 48 kHz), cut by the
  caller, so laion-clap's random cropping never happens: a window is
  quantised through int16 as laion-clap does, and embedded in one forward
  pass per batch. The embedding is laion's ``get_audio_embedding``: the
  projected, L2-normalised 512-d audio embedding.
"""

from __future__ import annotations

import contextlib
import importlib.util
import numbers
import os
import pickle
import sys
import threading
import types
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, MissingDependencyError, RewardkitError
from .base import Encoder, Windowing

SAMPLE_RATE = 48000
#: laion-clap's ``clip_samples``: every window is exactly this long.
WINDOW = 480000
AMODELS = ("HTSAT-tiny", "HTSAT-base")
TMODELS = ("roberta", "transformer")
#: The fusion variant CLAP_Module (laion-clap's hook.py) builds and the released fusion checkpoints use.
FUSION_TYPE = "aff_2d"
CKPT_ENV = "REWARDKIT_CLAP_CKPT"
TOKENIZER_ENV = "REWARDKIT_CLAP_TOKENIZER"
#: roberta-base's vocabulary size and padding id; a tokenizer that disagrees is not roberta-base's.
ROBERTA_VOCAB = 50265
ROBERTA_PAD_ID = 1
#: Token context of both text towers (laion-clap tokenises to 77 tokens).
CONTEXT_LENGTH = 77
#: The joint audio-text embedding size of laion-clap's CLAP (its ``joint_embed_shape``).
JOINT_DIM = 512

#: Checkpoint keys laion-clap itself drops or that newer transformers keep as non-persistent buffers.
_DROPPABLE_KEYS = ("text_branch.embeddings.position_ids", "text_branch.embeddings.token_type_ids")

# Guards loading clap_module and the scoped RobertaModel substitution (a module attribute, shared state).
_LOCK = threading.RLock()


class ClapEncoder(Encoder):
    """LAION-CLAP embeddings (Wu, Chen et al., 2023) from laion-clap's own model code.

    Each 10 s window (480 000 samples at 48 kHz) is clipped to [-1, 1],
    quantised through int16 exactly as laion-clap's ``get_audio_embedding_from_data``
    does, and mapped to one 512-d, L2-normalised embedding. For fusion models
    a window is exactly ``clip_samples`` long, so laion-clap's fusion input is
    four copies of the window's log-mel with ``longer=False``, built here for
    the whole batch at once. Nothing is random: the model is in eval mode and
    no crop position is drawn.

    Text (:meth:`embed_text`) goes through the same model's text tower into
    the same space: laion-clap's shipped BPE tokenizer for ``tmodel="transformer"``,
    or a local roberta-base tokenizer for ``tmodel="roberta"``.

    Parameters
    ----------
    ckpt : str or os.PathLike, optional
        A LAION-CLAP checkpoint (``.pt`` / ``.ckpt`` as released, or a
        ``.safetensors`` state dict). Default: ``$REWARDKIT_CLAP_CKPT``.
        Required unless ``random_init``. ``630k-audioset-best.pt`` (and the
        other ``630k-*`` files) fit ``HTSAT-tiny`` + ``roberta``; the ``music_*``
        files fit ``HTSAT-base`` + ``roberta``; ``*fusion*`` files need
        ``enable_fusion=True``.
    amodel : {"HTSAT-tiny", "HTSAT-base"}
        Audio tower (default ``HTSAT-tiny``).
    tmodel : {"roberta", "transformer"}
        Text tower (default ``roberta``, as in every released checkpoint).
    enable_fusion : bool
        Build the feature-fusion variant (``aff_2d``, as laion-clap's ``CLAP_Module``).
    device : str, optional
        Torch device; default CUDA when available.
    batch_size : int
        Windows per forward pass (default 16).
    hop : float
        Seconds between window starts (default 10.0, the window length; at most 10).
    pad : {"repeatpad", "repeat", "zero"}
        How a clip shorter than one window is filled (see :class:`~rewardkit.encoders.Windowing`).
    tokenizer : str or os.PathLike, optional
        For ``tmodel="roberta"``: a local folder with roberta-base's tokenizer
        files (``vocab.json`` and ``merges.txt``, or ``tokenizer.json``).
        Default: ``$REWARDKIT_CLAP_TOKENIZER``. Without one, audio embedding
        works and :meth:`embed_text` raises :class:`~rewardkit.errors.InputError`.
    random_init : bool
        Build the real architecture with random weights drawn from ``seed``
        and no checkpoint: for tests and benchmarks only (part of the fingerprint).
    seed : int
        Seed of ``random_init``.
    trust_checkpoint : bool
        Allow full unpickling of a checkpoint that neither torch's
        ``weights_only`` loader nor rewardkit's restricted loader can read.
        Unpickling can run arbitrary code: only for files from a trusted source.

    Notes
    -----
    A ``.pt`` checkpoint is read with ``torch.load(weights_only=True)``. The
    released LAION-CLAP files are pickled with protocol 4, which torch's
    weights-only unpickler rejects; they are then read with a restricted
    unpickler that rebuilds tensors and replaces every other object the
    file names (optimizer classes, training arguments, ...) by an inert
    placeholder, so no code from the file runs. Only ``trust_checkpoint=True``
    unpickles without restriction.

    A clip shorter than 10 s is padded by the caller (:attr:`windowing`);
    the default ``pad="repeatpad"`` repeats it a whole number of times and
    zero-fills the rest, as laion-clap's own ``repeatpad`` does, so short
    clips embed exactly as in laion-clap's pipeline.

    Attributes
    ----------
    model : torch.nn.Module
        laion-clap's ``CLAP`` module, in eval mode, on :attr:`device`.
    model_cfg : dict
        Its laion-clap model config (``audio_cfg``, ``text_cfg``, ...).
    text_ready : bool
        Whether :meth:`embed_text` can run (False for ``roberta`` without a tokenizer).
    """

    name = "clap"
    sample_rate = SAMPLE_RATE
    modalities = ("audio", "text")
    frames_per_window = 1
    code_version = "1"

    def __init__(self, *, ckpt: str | os.PathLike[str] | None = None, amodel: str = "HTSAT-tiny",
                 tmodel: str = "roberta", enable_fusion: bool = False, device: str | None = None,
                 batch_size: int = 16, hop: float = 10.0, pad: str = "repeatpad",
                 tokenizer: str | os.PathLike[str] | None = None, random_init: bool = False, seed: int = 0,
                 trust_checkpoint: bool = False):
        # Everything cheap is checked before torch or laion-clap is imported, so that a
        # misconfiguration fails in milliseconds rather than after a model build.
        if amodel not in AMODELS:
            raise InputError(f"amodel: expected one of {', '.join(AMODELS)}, got {amodel!r}")
        if tmodel not in TMODELS:
            raise InputError(f"tmodel: expected one of {', '.join(TMODELS)}, got {tmodel!r}")
        for flag, value in (("enable_fusion", enable_fusion), ("random_init", random_init),
                            ("trust_checkpoint", trust_checkpoint)):
            if not isinstance(value, bool):
                raise InputError(f"{flag}: expected True or False, got {value!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InputError(f"seed: expected an integer, got {seed!r}")
        if isinstance(hop, bool) or not isinstance(hop, numbers.Real) or not np.isfinite(hop):
            raise InputError(f"hop: expected seconds as a number, got {hop!r}")
        hop_samples = round(hop * SAMPLE_RATE)
        if not 1 <= hop_samples <= WINDOW:
            # A hop longer than the window would skip audio between windows.
            raise InputError(f"hop: expected 0 < hop <= {WINDOW / SAMPLE_RATE:g} s, got {hop!r}")
        self.windowing = Windowing(WINDOW, hop_samples, pad)
        if tokenizer is not None and tmodel != "roberta":
            raise InputError("tokenizer: only tmodel='roberta' takes a tokenizer folder; "
                             "tmodel='transformer' uses laion-clap's shipped BPE tokenizer")
        if random_init and ckpt is not None:
            raise InputError("ckpt/random_init: give a checkpoint or random_init=True, not both")
        _laion_dir()  # MissingDependencyError now, before anything slow
        ckpt_path = None if random_init else _resolve_ckpt(ckpt, amodel, enable_fusion)
        tok_dir, tok_source = _resolve_tokenizer(tokenizer, tmodel)

        self.amodel, self.tmodel, self.enable_fusion = amodel, tmodel, enable_fusion
        self.random_init, self.seed = random_init, seed
        self.requested_device = device
        self.batch_size = batch_size
        self.dim = JOINT_DIM
        self._ckpt_path, self._trust = ckpt_path, trust_checkpoint
        self._tok_dir, self._tok_source = tok_dir, tok_source
        # The fingerprint must not need the network: a run whose embeddings are all cached never builds
        # it. A checkpoint is identified by its bytes (about 1 s per GB); random weights by their seed and
        # the torch release that drew them.
        if ckpt_path is None:
            self._weights_hash = f"random-{seed}-torch{_torch_version()}"
        else:
            _sniff_checkpoint(ckpt_path)
            self._weights_hash = _file_sha256(ckpt_path)
        self._loaded: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        """Build laion-clap's model, fill it from the checkpoint and move it to the device (first use only)."""
        if self._loaded is not None:
            return self._loaded
        import torch

        with _LOCK:
            if self._loaded is not None:
                return self._loaded
            state = None if self._ckpt_path is None else _read_state_dict(self._ckpt_path, self._trust)
            tokenizer = None if self._tok_dir is None else _load_roberta_tokenizer(self._tok_dir, self._tok_source)
            clap = _load_clap_module()
            model, model_cfg = _build_model(clap, self.amodel, self.tmodel, self.enable_fusion, self.seed)
            if state is not None:
                _load_weights(model, state, self._ckpt_path, self.amodel, self.tmodel, self.enable_fusion)
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            audio_cfg = model_cfg["audio_cfg"]
            if audio_cfg["sample_rate"] != SAMPLE_RATE or audio_cfg["clip_samples"] != WINDOW:
                raise RewardkitError(f"encoder 'clap': laion-clap's {self.amodel} config expects "
                                     f"{audio_cfg['clip_samples']} samples at {audio_cfg['sample_rate']} Hz, "
                                     f"this encoder was written for {WINDOW} at {SAMPLE_RATE}")
            if int(model.joint_embed_shape) != self.dim:
                raise RewardkitError(f"encoder 'clap': laion-clap's model embeds into {model.joint_embed_shape} "
                                     f"dimensions, expected {self.dim}")
            model.to(self.device)
            mel = _fusion_mel(audio_cfg).to(self.device) if self.enable_fusion else None
            self._loaded = {"model": model, "model_cfg": model_cfg, "clap": clap, "torch": torch, "mel": mel,
                            "tokenizer": tokenizer}
        return self._loaded

    @property
    def model(self) -> Any:
        """laion-clap's ``CLAP`` module (built on first access)."""
        return self._load()["model"]

    @property
    def model_cfg(self) -> dict[str, Any]:
        return self._load()["model_cfg"]

    @property
    def text_ready(self) -> bool:
        return self.tmodel == "transformer" or self._tok_dir is not None

    def fingerprint_parts(self) -> dict[str, Any]:
        return {"weights": self._weights_hash, "amodel": self.amodel, "tmodel": self.tmodel,
                "enable_fusion": self.enable_fusion,
                "fusion_type": FUSION_TYPE if self.enable_fusion else None,
                "quantize_int16": True, "random_init": self.random_init,
                "seed": self.seed if self.random_init else None}

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """Embed a batch of 10 s windows in one forward pass.

        Parameters
        ----------
        windows : np.ndarray [shape=(b, 480000)], float32
            Mono audio at 48 kHz; values outside [-1, 1] are clipped (by the int16 quantisation).

        Returns
        -------
        np.ndarray [shape=(b, 1, 512)], float32
            L2-normalised audio embeddings.
        """
        loaded = self._load()
        torch, model = loaded["torch"], loaded["model"]
        x = np.asarray(windows)
        if x.ndim != 2 or x.shape[1] != WINDOW:
            raise InputError(f"windows: expected shape (b, {WINDOW}), got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(f"windows: expected float samples in [-1, 1], got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise InputError("windows: contain NaN or infinite samples")
        if x.shape[0] == 0:
            return np.zeros((0, 1, self.dim), np.float32)
        # laion-clap's float32_to_int16 then int16_to_float32, the same numpy operations in the same
        # dtypes, so the quantised waveform is bit-identical to what its own pipeline feeds the model.
        q = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
        x = (q / 32767.0).astype(np.float32)
        with torch.inference_mode():
            wav = torch.from_numpy(x).to(self.device)
            batch = {"waveform": wav}
            if self.enable_fusion:
                # A window of exactly clip_samples: laion stacks 4 copies of its mel and marks it
                # not longer, so the fusion branch is skipped (HTSAT's eval path for longer.sum() == 0).
                mel = loaded["mel"](wav).transpose(1, 2)                   # (b, frames, mel_bins)
                batch["mel_fusion"] = mel.unsqueeze(1).repeat(1, 4, 1, 1)
                batch["longer"] = torch.zeros(wav.shape[0], dtype=torch.bool, device=self.device)
            feats = model.encode_audio(batch, device=self.device)["embedding"]
            emb = torch.nn.functional.normalize(model.audio_projection(feats), dim=-1)
            return emb.float().cpu().numpy()[:, None, :]

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Embed texts into the audio embedding space.

        Parameters
        ----------
        texts : list of str

        Returns
        -------
        np.ndarray [shape=(len(texts), 512)], float32
            L2-normalised text embeddings (laion's ``get_text_embedding``).
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError("texts: expected a list of strings")
        texts = list(texts)
        if not self.text_ready:
            raise InputError(f"encoder 'clap': embed_text with tmodel='roberta' needs the roberta-base "
                             f"tokenizer, which is not available offline: pass tokenizer=DIR (a folder with "
                             f"roberta-base's vocab.json and merges.txt) or set {TOKENIZER_ENV}=DIR")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        loaded = self._load()
        torch, model, clap, tokenizer = loaded["torch"], loaded["model"], loaded["clap"], loaded["tokenizer"]
        out = []
        step = max(self.batch_size, 32)
        with torch.inference_mode():
            for s in range(0, len(texts), step):
                chunk = texts[s:s + step]
                if self.tmodel == "transformer":
                    tokens = clap.tokenize(chunk, context_length=CONTEXT_LENGTH).to(self.device)
                else:
                    enc = tokenizer(chunk, padding="max_length", truncation=True,
                                          max_length=CONTEXT_LENGTH, return_tensors="pt")
                    tokens = {"input_ids": enc["input_ids"].to(self.device),
                              "attention_mask": enc["attention_mask"].to(self.device)}
                feats = model.encode_text(tokens, device=self.device)
                out.append(torch.nn.functional.normalize(feats, dim=-1).float().cpu().numpy())
        return np.concatenate(out)


# --- laion-clap's model code, without laion_clap ------------------------------------------------------

def _laion_dir() -> Path:
    """laion-clap's package folder, found without importing (and so running) its ``__init__``."""
    try:
        spec = importlib.util.find_spec("laion_clap")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("encoder 'clap': needs laion-clap; pip install 'rewardkit[clap]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_clap_module() -> types.ModuleType:
    """laion-clap's inner ``clap_module`` package, registered as ``clap_module`` (its code imports that name)."""
    pkg_dir = _laion_dir() / "clap_module"
    init = pkg_dir / "__init__.py"
    with _LOCK:
        mod = sys.modules.get("clap_module")
        if mod is not None:
            # Already loaded (by us, or by laion_clap itself): reuse it if it is laion-clap's.
            file = getattr(mod, "__file__", None)
            if file is None or Path(file).resolve() != init.resolve():
                raise RewardkitError(f"encoder 'clap': a different module named 'clap_module' is already "
                                     f"imported ({file}); laion-clap's code needs that name for {pkg_dir}")
            return mod
        spec = importlib.util.spec_from_file_location("clap_module", init,
                                                      submodule_search_locations=[str(pkg_dir)])
        if spec is None or spec.loader is None:
            raise MissingDependencyError(f"encoder 'clap': laion-clap's model code is missing from {pkg_dir}; "
                                         "pip install 'rewardkit[clap]'")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["clap_module"] = mod
        try:
            spec.loader.exec_module(mod)
        except ImportError as exc:
            _forget_clap_module()
            raise MissingDependencyError(f"encoder 'clap': laion-clap cannot be imported ({exc}); "
                                         "pip install 'rewardkit[clap]'") from None
        except BaseException:
            _forget_clap_module()
            raise
        return mod


def _forget_clap_module() -> None:
    for name in [n for n in sys.modules if n == "clap_module" or n.startswith("clap_module.")]:
        del sys.modules[name]


def _roberta_config() -> Any:
    """roberta-base's architecture, as a config, so the text tower can be built without its hub files."""
    from transformers import RobertaConfig

    return RobertaConfig(vocab_size=ROBERTA_VOCAB, hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                         hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                         max_position_embeddings=514, type_vocab_size=1, initializer_range=0.02,
                         layer_norm_eps=1e-5, pad_token_id=ROBERTA_PAD_ID, bos_token_id=0, eos_token_id=2)


@contextlib.contextmanager
def _offline_roberta(clap: types.ModuleType) -> Iterator[None]:
    """Within the block, laion's ``RobertaModel.from_pretrained('roberta-base')`` builds from a config.

    laion-clap's ``CLAP.__init__`` fetches roberta-base's pretrained weights for
    the text tower, only for every one of them to be overwritten by the CLAP
    checkpoint. Substituting the name ``RobertaModel`` in laion's model module
    for the duration of the build keeps laion's constructor, module order and
    state-dict keys exactly as they are, while the tower is created from
    roberta-base's config with random weights and no network. (The
    alternatives, building with another tower and swapping modules after,
    or re-implementing ``CLAP.__init__``, would each drift from laion's code.)
    """
    from transformers import RobertaModel

    class _FromConfig:
        @staticmethod
        def from_pretrained(name: str, *args: Any, **kwargs: Any) -> Any:
            if name != "roberta-base":
                raise RewardkitError(f"encoder 'clap': laion-clap asked for {name!r}, expected 'roberta-base'")
            return RobertaModel(_roberta_config())

    model_mod = clap.model
    with _LOCK:
        original = model_mod.RobertaModel
        model_mod.RobertaModel = _FromConfig
        try:
            yield
        finally:
            model_mod.RobertaModel = original


def _build_model(clap: types.ModuleType, amodel: str, tmodel: str, enable_fusion: bool,
                 seed: int) -> tuple[Any, dict[str, Any]]:
    """laion's ``create_model`` on the CPU with seeded random weights, leaving the global RNG untouched."""
    import torch

    scope = _offline_roberta(clap) if tmodel == "roberta" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), scope, warnings.catch_warnings():
        # HTS-AT's relative position index calls torch.meshgrid without indexing=: harmless noise.
        warnings.filterwarnings("ignore", message=r".*torch\.meshgrid", category=UserWarning)
        torch.manual_seed(seed)
        model, cfg = clap.create_model(amodel, tmodel, precision="fp32", device="cpu",
                                       enable_fusion=enable_fusion,
                                       fusion_type=FUSION_TYPE if enable_fusion else "None")
    return model.float(), cfg


def _fusion_mel(audio_cfg: dict[str, Any]) -> Any:
    """laion-clap's fusion log-mel (training/data.py ``get_mel``), as a batched module."""
    import torch
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=audio_cfg["sample_rate"], n_fft=audio_cfg["window_size"],
        win_length=audio_cfg["window_size"], hop_length=audio_cfg["hop_size"], center=True,
        pad_mode="reflect", power=2.0, norm=None, n_mels=audio_cfg["mel_bins"],
        f_min=audio_cfg["fmin"], f_max=audio_cfg["fmax"])
    # top_db=None: no clamp relative to the loudest bin, so a window's mel never depends on its batch.
    return torch.nn.Sequential(mel, torchaudio.transforms.AmplitudeToDB(top_db=None))


# --- checkpoints -------------------------------------------------------------------------------------

def _torch_version() -> str:
    from importlib import metadata

    return metadata.version("torch")


def _file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()[:16]


def _sniff_checkpoint(path: Path) -> None:
    """Refuse, before anything slow, a file that is no torch zip, legacy pickle or safetensors file."""
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors":
        ok = len(head) >= 9 and head[8:9] == b"{"
    else:
        ok = head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"
    if not ok:
        raise InputError(f"ckpt: {str(path)!r} is not a PyTorch checkpoint (nor a safetensors file)")

def _ckpt_hint(amodel: str, enable_fusion: bool) -> str:
    if amodel == "HTSAT-base":
        name = "music_audioset_epoch_15_esc_90.14.pt"
    else:
        name = "630k-audioset-fusion-best.pt" if enable_fusion else "630k-audioset-best.pt"
    return (f"download {name} from the LAION-CLAP releases (Hugging Face repo lukewys/laion_clap) on a "
            f"machine with network, then pass --clap-ckpt PATH (ckpt=PATH) or set {CKPT_ENV}=PATH")


def _resolve_ckpt(ckpt: str | os.PathLike[str] | None, amodel: str, enable_fusion: bool) -> Path:
    source = "ckpt"
    if ckpt is None:
        ckpt, source = os.environ.get(CKPT_ENV) or None, f"${CKPT_ENV}"
    if ckpt is None:
        raise InputError(f"encoder 'clap': no checkpoint (rewardkit never downloads one); "
                         f"{_ckpt_hint(amodel, enable_fusion)}")
    if not isinstance(ckpt, (str, os.PathLike)):
        raise InputError(f"ckpt: expected a file path, got {type(ckpt).__name__}")
    path = Path(ckpt).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise InputError(f"{source}: checkpoint {str(path)!r} {what}; {_ckpt_hint(amodel, enable_fusion)}")
    return path


class _Inert:
    """What the restricted unpickler returns for any global outside its allowlist: calling it runs nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


# The only real callables a restricted load may reach: tensor rebuilding and ordered dicts.
# (Storage types are resolved by torch's own unpickler wrapper before find_class is asked.)
_ALLOWED_GLOBALS = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_parameter")}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        return _Inert


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


# A stand-in for the ``pickle`` module, for torch.load's pickle_module argument.
_RESTRICTED_PICKLE = types.SimpleNamespace(__name__="rewardkit_restricted_pickle",
                                           Unpickler=_RestrictedUnpickler, load=_restricted_load)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _read_state_dict(path: Path, trust: bool) -> dict[str, Any]:
    """The tensors of a checkpoint file, keys as laion-clap's model names them."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:
            raise RewardkitError(f"ckpt: cannot read {str(path)!r} as safetensors ({_first_line(exc)})") from None
    else:
        with open(path, "rb") as f:
            head = f.read(2)
        if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
            raise RewardkitError(f"ckpt: {str(path)!r} is not a PyTorch checkpoint or .safetensors file")
        try:
            with warnings.catch_warnings():
                # torch warns about protocol-4 pickles before failing on them; the failure is handled.
                warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as safe_exc:
            try:
                # torch's weights-only unpickler rejects protocol-4 pickles (the released CLAP files).
                obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
            except Exception:
                if not trust:
                    raise RewardkitError(
                        f"ckpt: cannot read {str(path)!r} safely ({_first_line(safe_exc)}); if the file comes "
                        "from a source you trust, pass trust_checkpoint=True (full unpickling can run code), "
                        "or convert it to .safetensors") from None
                try:
                    obj = torch.load(path, map_location="cpu", weights_only=False)
                except Exception as exc:
                    raise RewardkitError(f"ckpt: cannot read {str(path)!r} ({_first_line(exc)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RewardkitError(f"ckpt: {str(path)!r} holds no state dict (expected a dict of tensors, "
                             "or a dict with a 'state_dict' entry)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise RewardkitError(f"ckpt: {str(path)!r}: {len(bad)} state-dict entries are not tensors "
                             f"(e.g. {bad[0]!r})")
    # Saved from a DataParallel/DDP wrapper: every key starts with "module.".
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _checkpoint_layout(state: dict[str, Any]) -> str:
    """What the checkpoint's keys say it was built as, for an error message."""
    parts = []
    proj = state.get("audio_branch.patch_embed.proj.weight")
    if proj is not None:
        parts.append({96: "HTSAT-tiny", 128: "HTSAT-base", 256: "HTSAT-large"}.get(int(proj.shape[0]), "?"))
    if "text_branch.embeddings.word_embeddings.weight" in state:
        parts.append("tmodel='roberta'")
    elif "token_embedding.weight" in state:
        parts.append("tmodel='transformer'")
    parts.append(f"enable_fusion={any(k.startswith('audio_branch.fusion_model.') for k in state)}")
    return ", ".join(parts)


def _load_weights(model: Any, state: dict[str, Any], path: Path, amodel: str, tmodel: str,
                  fusion: bool) -> None:
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if k in expected or k not in _DROPPABLE_KEYS}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or shapes:
        detail = "; ".join(f"{len(keys)} {what} (e.g. {keys[0]})" for what, keys in
                           (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes))
                           if keys)
        raise RewardkitError(f"ckpt: {str(path)!r} does not fit amodel={amodel!r}, tmodel={tmodel!r}, "
                             f"enable_fusion={fusion} ({detail}); it looks like {_checkpoint_layout(state)}")
    model.load_state_dict(state, strict=True)


# --- tokenizers --------------------------------------------------------------------------------------

def _resolve_tokenizer(tokenizer: str | os.PathLike[str] | None, tmodel: str) -> tuple[Path | None, str]:
    if tmodel != "roberta":
        return None, ""
    source = "tokenizer"
    if tokenizer is None:
        tokenizer, source = os.environ.get(TOKENIZER_ENV) or None, f"${TOKENIZER_ENV}"
    if tokenizer is None:
        return None, ""
    if not isinstance(tokenizer, (str, os.PathLike)):
        raise InputError(f"tokenizer: expected a folder path, got {type(tokenizer).__name__}")
    path = Path(tokenizer).expanduser()
    has_files = (path / "tokenizer.json").is_file() or (
        (path / "vocab.json").is_file() and (path / "merges.txt").is_file())
    if not path.is_dir() or not has_files:
        raise InputError(f"{source}: {str(path)!r} is not a folder with roberta-base's tokenizer files "
                         "(vocab.json and merges.txt, or tokenizer.json)")
    return path, source


def _load_roberta_tokenizer(path: Path, source: str) -> Any:
    from transformers import RobertaTokenizer

    try:
        tok = RobertaTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise InputError(f"{source}: cannot load a RoBERTa tokenizer from {str(path)!r} "
                         f"({_first_line(exc)})") from None
    # transformers can return a near-empty tokenizer instead of failing; only roberta-base's
    # vocabulary and padding id match the text tower's embedding table.
    if tok.vocab_size != ROBERTA_VOCAB or len(tok) != ROBERTA_VOCAB or tok.pad_token_id != ROBERTA_PAD_ID:
        raise InputError(f"{source}: the tokenizer in {str(path)!r} has {len(tok)} tokens and pad id "
                         f"{tok.pad_token_id}, not roberta-base's {ROBERTA_VOCAB} and {ROBERTA_PAD_ID}")
    return tok
