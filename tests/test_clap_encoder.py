"""The ``clap`` encoder against laion-clap's own pipeline, offline, on randomly initialised weights.

Real LAION-CLAP checkpoints cannot be fetched here, so the real architecture
(HTSAT-tiny + laion's CLIP-style text tower, whose BPE tokenizer ships with
laion-clap) is built with seeded random weights. The reference path is
laion-clap's own ``get_audio_features`` + ``CLAP.get_audio_embedding``, one
window at a time, exactly as ``CLAP_Module.get_audio_embedding_from_data``
runs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rewardkit.encoders import clap as clap_mod
from rewardkit.errors import InputError, RewardkitError

# find_spec, not importorskip: importing laion_clap itself would try to download tokenizers.
if importlib.util.find_spec("laion_clap") is None:
    pytest.skip("needs laion-clap (pip install 'rewardkit[clap]')", allow_module_level=True)

torch = pytest.importorskip("torch")

SR = clap_mod.SAMPLE_RATE
W = clap_mod.WINDOW
ATOL = 1e-5


# --- laion-clap's own pipeline, loaded without laion_clap/__init__ ---------------------------------

@pytest.fixture(scope="module")
def laion_data():
    """laion-clap's ``training/data.py`` (``get_audio_features``, int16 helpers).

    That file downloads three tokenizers at import time; they are never used
    by the functions under test, so ``from_pretrained`` is stubbed while it loads.
    """
    clap_mod._load_clap_module()  # data.py imports clap_module by name
    import transformers

    with pytest.MonkeyPatch.context() as mp:
        for cls in (transformers.BertTokenizer, transformers.RobertaTokenizer, transformers.BartTokenizer):
            mp.setattr(cls, "from_pretrained", classmethod(lambda cls, *a, **k: None))
        path = clap_mod._laion_dir() / "training" / "data.py"
        spec = importlib.util.spec_from_file_location("_rewardkit_test_laion_data", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def laion_embed(model, model_cfg, data, clips: list[np.ndarray], fusion: bool) -> np.ndarray:
    """laion's get_audio_embedding_from_data, one clip per model call."""
    out = []
    for clip in clips:
        wav = torch.from_numpy(data.int16_to_float32(data.float32_to_int16(clip))).float()
        feats = data.get_audio_features({}, wav, W, data_truncating="fusion" if fusion else "rand_trunc",
                                        data_filling="repeatpad", audio_cfg=model_cfg["audio_cfg"])
        with torch.no_grad():
            out.append(model.get_audio_embedding([feats]).cpu().numpy())
    return np.concatenate(out)


def our_window(clip: np.ndarray) -> np.ndarray:
    """The clip as rewardkit's windowing cuts it for the clap encoder (default padding)."""
    from rewardkit.audio import frame_windows

    (window,) = frame_windows(iter([clip]), clap_mod.ClapEncoder(random_init=True).windowing)
    return window


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(W) / SR
    return {
        # Loud enough that some samples clip at +-1 in the int16 quantisation.
        "noise": (0.4 * rng.standard_normal(W)).astype(np.float32),
        "sine": (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32),
        "short": (0.3 * rng.standard_normal(int(1.3 * SR))).astype(np.float32),
    }


@pytest.fixture(scope="module")
def windows(clips) -> np.ndarray:
    return np.stack([clips["noise"], clips["sine"], our_window(clips["short"])])


@pytest.fixture(scope="module")
def enc():
    return clap_mod.ClapEncoder(random_init=True, tmodel="transformer", device="cpu", batch_size=3)


@pytest.fixture(scope="module")
def ours(enc, windows) -> np.ndarray:
    return enc.embed_windows(windows)


# --- 1. equality with laion's pipeline ------------------------------------------------------------

def test_matches_laion_pipeline(enc, ours, clips, laion_data):
    # laion gets the raw short clip and pads it itself; ours gets the window padded the same way.
    ref = laion_embed(enc.model, enc.model_cfg, laion_data, [clips["noise"], clips["sine"], clips["short"]],
                      fusion=False)
    assert ours.shape == (3, 1, 512) and ours.dtype == np.float32
    np.testing.assert_allclose(ours[:, 0], ref, atol=ATOL, rtol=0)
    # The three windows really are different inputs.
    assert np.abs(ours[0] - ours[1]).max() > 1e-3 and np.abs(ours[1] - ours[2]).max() > 1e-3


# laion's own get_mel passes torchaudio a deprecated argument.
@pytest.mark.filterwarnings("ignore:Argument 'onesided' has been deprecated:UserWarning")
def test_fusion_matches_laion_pipeline(windows, clips, laion_data):
    fenc = clap_mod.ClapEncoder(random_init=True, tmodel="transformer", enable_fusion=True, device="cpu")
    got = fenc.embed_windows(windows)
    ref = laion_embed(fenc.model, fenc.model_cfg, laion_data,
                      [clips["noise"], clips["sine"], clips["short"]], fusion=True)
    np.testing.assert_allclose(got[:, 0], ref, atol=ATOL, rtol=0)
    assert fenc.fingerprint_parts()["fusion_type"] == "aff_2d"


# --- 2. determinism and batch independence --------------------------------------------------------

def test_deterministic_and_batch_independent(enc, ours, windows):
    # embed_batched at batch_size 3 is one more forward of the same batch: bit-identical.
    np.testing.assert_array_equal(enc.embed_batched(windows), ours)
    alone = enc.embed_windows(windows[1:2])
    np.testing.assert_allclose(alone[0], ours[1], atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours[:, 0], axis=1), 1.0, atol=1e-5)


def test_embed_windows_validates(enc, windows):
    with pytest.raises(InputError, match="shape"):
        enc.embed_windows(windows[:, :1000])
    bad = windows[:1].copy()
    bad[0, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        enc.embed_windows(bad)
    assert enc.embed_windows(np.zeros((0, W), np.float32)).shape == (0, 1, 512)


# --- 3. text ---------------------------------------------------------------------------------------

def test_text_matches_laion(enc):
    texts = ["a dog barking", "solo piano, slow and quiet", "", "drums " * 100]
    got = enc.embed_text(texts)
    assert got.shape == (4, 512) and got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    tokens = sys.modules["clap_module"].tokenize(texts)
    with torch.no_grad():
        # laion's get_text_embedding does encode_text + normalize, but first loops `for k in data:
        # data[k] = data[k].to(device)`, which indexes a token tensor by token ids and fails for the
        # transformer tower; so its two steps are run directly.
        ref = torch.nn.functional.normalize(enc.model.encode_text(tokens, device="cpu"), dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=0)
    assert enc.embed_text([]).shape == (0, 512)
    with pytest.raises(InputError, match="list of strings"):
        enc.embed_text("not a list")


# --- 4. checkpoints that are missing or broken fail fast and clearly --------------------------------

def test_missing_checkpoint_fails_fast(monkeypatch):
    monkeypatch.delenv(clap_mod.CKPT_ENV, raising=False)
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        clap_mod.ClapEncoder()
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert "REWARDKIT_CLAP_CKPT" in msg and "--clap-ckpt" in msg and "630k-audioset-best.pt" in msg
    assert "\n" not in msg


def test_nonexistent_checkpoint_names_path(monkeypatch, tmp_path):
    missing = tmp_path / "nope" / "630k-audioset-best.pt"
    with pytest.raises(InputError, match="nope"):
        clap_mod.ClapEncoder(ckpt=missing)
    monkeypatch.setenv(clap_mod.CKPT_ENV, str(missing))
    with pytest.raises(InputError, match=r"\$REWARDKIT_CLAP_CKPT.*nope"):
        clap_mod.ClapEncoder()


def test_garbage_checkpoint_fails_clearly(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint " * 40)
    t0 = time.perf_counter()
    with pytest.raises(RewardkitError, match="not a PyTorch checkpoint"):
        clap_mod.ClapEncoder(ckpt=junk, tmodel="transformer")
    assert time.perf_counter() - t0 < 10
    bad_st = tmp_path / "junk.safetensors"
    bad_st.write_bytes(b"\x00" * 64)
    with pytest.raises(RewardkitError, match="safetensors"):
        clap_mod.ClapEncoder(ckpt=bad_st, tmodel="transformer")
    no_tensors = tmp_path / "epoch.pt"
    torch.save({"epoch": 3}, no_tensors)
    lazy = clap_mod.ClapEncoder(ckpt=no_tensors, tmodel="transformer")  # a real torch file: read on first use
    with pytest.raises(RewardkitError, match="no state dict"):
        lazy.embed_windows(np.zeros((1, clap_mod.WINDOW), np.float32))


@pytest.mark.parametrize("options, match", [
    ({"amodel": "PANN-14"}, "amodel"),
    ({"tmodel": "bert"}, "tmodel"),
    ({"hop": 0}, "hop"),
    ({"hop": 10.5}, "hop"),
    ({"pad": "mirror"}, "pad"),
    ({"batch_size": 0}, "batch_size"),
    ({"enable_fusion": "yes"}, "enable_fusion"),
    ({"tmodel": "transformer", "tokenizer": "/tmp"}, "tokenizer"),
    ({"ckpt": "x.pt", "random_init": True}, "random_init"),
    ({"random_init": True, "tokenizer": "/nonexistent-dir"}, "tokenizer"),
])
def test_bad_options(options, match):
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=match):
        clap_mod.ClapEncoder(**options)
    assert time.perf_counter() - t0 < 5  # rejected before torch or laion-clap is loaded


# --- 5. checkpoint round trip ----------------------------------------------------------------------

def test_checkpoint_round_trip(enc, ours, windows, tmp_path):
    path = tmp_path / "random-clap.pt"
    state = {"module." + k: v for k, v in enc.model.state_dict().items()}
    torch.save({"epoch": 1, "state_dict": state}, path)
    loaded = clap_mod.ClapEncoder(ckpt=path, tmodel="transformer", device="cpu")
    np.testing.assert_allclose(loaded.embed_windows(windows), ours, atol=1e-6, rtol=0)
    assert loaded.fingerprint_parts()["random_init"] is False
    # A checkpoint is identified by its bytes, without building the model.
    again = clap_mod.ClapEncoder(ckpt=path, tmodel="transformer", device="cpu")
    assert again.fingerprint() == loaded.fingerprint() and again._loaded is None
    other = clap_mod.ClapEncoder(random_init=True, seed=1, tmodel="transformer", device="cpu")
    assert other.fingerprint() != enc.fingerprint()
    assert other.fingerprint_parts()["weights"] != enc.fingerprint_parts()["weights"]
    other_path = tmp_path / "other-clap.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in other.model.state_dict().items()}}, other_path)
    assert clap_mod.ClapEncoder(ckpt=other_path, tmodel="transformer").fingerprint() != loaded.fingerprint()


def test_checkpoint_that_does_not_fit(enc):
    state = dict(enc.model.state_dict())
    state.pop("audio_projection.0.weight")
    state["audio_branch.fusion_model.extra"] = torch.zeros(1)
    # Checked before load_state_dict touches the model, so the shared encoder is left as it was.
    with pytest.raises(RewardkitError, match=r"does not fit.*1 missing \(e\.g\. audio_projection\.0\.weight\)"
                       r".*1 unexpected.*looks like HTSAT-tiny, tmodel='transformer', enable_fusion=True"):
        clap_mod._load_weights(enc.model, state, Path("partial.pt"), "HTSAT-tiny", "transformer", False)


def test_safetensors_checkpoint(enc, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "clap.safetensors"
    tensors = {k: v.contiguous() for k, v in list(enc.model.state_dict().items())[:5]}
    save_file(tensors, str(path))
    got = clap_mod._read_state_dict(path, trust=False)
    assert sorted(got) == sorted(tensors)
    for k, v in tensors.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)


class _Tripwire:
    """Unpickling this object would create ``marker``: the restricted loader must not."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")
def test_protocol4_checkpoint_loads_without_running_code(tmp_path):
    # The released CLAP files are protocol-4 pickles with training state besides the weights,
    # which torch's weights_only loader rejects.
    marker = tmp_path / "ran"
    tensors = {"module.a.weight": torch.randn(3, 4), "module.b": torch.arange(5)}
    path = tmp_path / "p4.pt"
    torch.save({"epoch": np.int64(15), "state_dict": tensors, "args": _Tripwire(marker)}, path,
               pickle_protocol=4)
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raises, it is not our loader's result
        torch.load(path, map_location="cpu", weights_only=True)
    got = clap_mod._read_state_dict(path, trust=False)
    assert not marker.exists()
    assert sorted(got) == ["a.weight", "b"]
    torch.testing.assert_close(got["a.weight"], tensors["module.a.weight"], rtol=0, atol=0)
    torch.testing.assert_close(got["b"], tensors["module.b"], rtol=0, atol=0)


# --- 6. imports ------------------------------------------------------------------------------------

def test_module_import_does_not_load_laion(tmp_path):
    code = textwrap.dedent("""
        import sys
        import transformers

        def refuse(*args, **kwargs):
            raise AssertionError(f"from_pretrained{args[1:]} called")

        # Neither importing nor building may fetch anything from the hub.
        transformers.PreTrainedModel.from_pretrained = classmethod(refuse)
        transformers.PreTrainedTokenizerBase.from_pretrained = classmethod(refuse)
        before = list(sys.path)
        import rewardkit, rewardkit.encoders, rewardkit.encoders.clap
        from rewardkit import encoders
        assert "clap" in encoders.names()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("laion_clap", "clap_module"))
        assert not loaded, loaded
        enc = encoders.get("clap", random_init=True, tmodel="transformer", device="cpu")
        enc.fingerprint()
        assert "clap_module" not in sys.modules  # the model is built on first use
        enc.model
        assert "clap_module" in sys.modules
        assert not any(m.split(".")[0] == "laion_clap" for m in sys.modules)
        assert sys.path == before, "sys.path changed"
        print("ok", enc.dim)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok 512")


# --- 7. roberta text tower, offline ----------------------------------------------------------------

def _fake_roberta_tokenizer(folder: Path, size: int = clap_mod.ROBERTA_VOCAB) -> Path:
    """A byte-level BPE tokenizer folder shaped like roberta-base's (no merges, same ids and size)."""
    from clap_module.tokenizer import bytes_to_unicode  # laion's copy of GPT-2's byte table

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    while len(vocab) < size - 1:
        vocab[f"tok{len(vocab)}"] = len(vocab)
    vocab["<mask>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


@pytest.fixture(scope="module")
def roberta_enc():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv(clap_mod.TOKENIZER_ENV, raising=False)
        import transformers

        def refuse(*args, **kwargs):
            raise AssertionError("from_pretrained called while building the CLAP roberta tower")

        mp.setattr(transformers.PreTrainedModel, "from_pretrained", classmethod(refuse))
        t0 = time.perf_counter()
        built = clap_mod.ClapEncoder(random_init=True, tmodel="roberta", device="cpu")
        seconds = time.perf_counter() - t0
    return built, seconds


def test_roberta_builds_offline_without_tokenizer(roberta_enc, windows):
    enc, seconds = roberta_enc
    assert seconds < 60, f"building took {seconds:.1f} s"
    assert type(enc.model.text_branch).__name__ == "RobertaModel"
    assert enc.model.text_branch.embeddings.word_embeddings.weight.shape == (clap_mod.ROBERTA_VOCAB, 768)
    emb = enc.embed_windows(windows[:1])
    assert emb.shape == (1, 1, 512) and np.isfinite(emb).all()
    assert not enc.text_ready
    with pytest.raises(InputError, match=r"tokenizer=DIR.*REWARDKIT_CLAP_TOKENIZER"):
        enc.embed_text(["a dog barking"])
    # laion's own model class restored after the scoped substitution.
    assert sys.modules["clap_module"].model.RobertaModel.__name__ == "RobertaModel"


def test_roberta_text_with_local_tokenizer(roberta_enc, tmp_path):
    folder = _fake_roberta_tokenizer(tmp_path / "roberta-base")
    tok = clap_mod._load_roberta_tokenizer(folder, "tokenizer")
    enc, _ = roberta_enc
    texts = ["a dog barking", "rain on a tin roof"]
    # the same tokenizer ClapEncoder(tokenizer=folder) loads, without a second build
    enc._tok_dir, enc._loaded["tokenizer"] = folder, tok
    try:
        got = enc.embed_text(texts)
        hook_style = tok(texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
        with torch.no_grad():
            ref = enc.model.get_text_embedding(dict(hook_style)).cpu().numpy()
    finally:
        enc._tok_dir, enc._loaded["tokenizer"] = None, None
    assert got.shape == (2, 512)
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=0)


def test_roberta_tokenizer_checks(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="tokenizer files"):
        clap_mod.ClapEncoder(random_init=True, tokenizer=empty)
    monkeypatch.setenv(clap_mod.TOKENIZER_ENV, str(empty))
    with pytest.raises(InputError, match=r"\$REWARDKIT_CLAP_TOKENIZER"):
        clap_mod.ClapEncoder(random_init=True)
    # A well-formed folder with the wrong vocabulary is refused, not silently used.
    small = _fake_roberta_tokenizer(tmp_path / "small", size=300)
    with pytest.raises(InputError, match="300 tokens"):
        clap_mod._load_roberta_tokenizer(small, "tokenizer")
    assert clap_mod._load_roberta_tokenizer(_fake_roberta_tokenizer(tmp_path / "ok"), "tokenizer").vocab_size \
        == clap_mod.ROBERTA_VOCAB
