"""audiobox-aesthetics through rewardkit.audiobox, on random weights of the real architecture.

The reference is the package's own inference (``audiobox_aesthetics.infer.AesPredictor``)
on the same checkpoint, so the windowing, masking, weighting and de-standardisation
are checked against the code that defines them. Skipped without the optional extra.
"""

import numpy as np
import pytest
import soundfile as sf

aes = pytest.importorskip("audiobox_aesthetics.model.aes")
torch = pytest.importorskip("torch")

from rewardkit.audiobox import AXES, AudioboxAesthetics, window_batch  # noqa: E402
from rewardkit.errors import InputError, RewardkitError  # noqa: E402

CONFIG = {"proj_num_layer": 1, "proj_ln": False, "proj_act_fn": "gelu", "proj_dropout": 0.0, "nth_layer": 13,
          "use_weighted_layer_sum": True, "precision": "32", "normalize_embed": True, "output_dim": 1}
TRANSFORM = {"CE": {"mean": 5.5, "std": 1.5}, "CU": {"mean": 6.0, "std": 1.2},
             "PC": {"mean": 3.0, "std": 1.8}, "PQ": {"mean": 7.0, "std": 1.0}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint.pt in the released layout, with random weights (and random layer weights)."""
    torch.manual_seed(0)
    model = aes.AesMultiOutput(**CONFIG, target_transform=TRANSFORM)
    with torch.no_grad():
        for p in model.layer_weights.values():
            p.normal_()
    folder = tmp_path_factory.mktemp("abx")
    path = folder / "checkpoint.pt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "model_cfg": CONFIG, "target_transform": TRANSFORM}, path)
    return path


@pytest.fixture(scope="module")
def ours(checkpoint):
    return AudioboxAesthetics(checkpoint, batch_size=1)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    t = np.arange(12 * 16000) / 16000
    long = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    return [long, (0.2 * rng.normal(size=3 * 16000)).astype(np.float32)]


def test_window_batch_matches_the_package():
    infer = pytest.importorskip("audiobox_aesthetics.infer")
    audio = np.arange(23 * 16000 // 2, dtype=np.float32)          # 11.5 s: one full window, one partial
    windows, masks, weights = window_batch(audio)
    ref_w, ref_m, ref_weights, _ = infer.make_inference_batch([torch.from_numpy(audio)[None]], 10, 10)
    np.testing.assert_array_equal(windows, torch.cat(ref_w).numpy())
    np.testing.assert_array_equal(masks, torch.cat(ref_m).numpy())
    np.testing.assert_allclose(weights, ref_weights)


def test_scores_match_the_package_inference(checkpoint, ours, clips):
    infer = pytest.importorskip("audiobox_aesthetics.infer")
    ours = ours.score_audio(clips)
    assert ours.shape == (2, 4) and ours.dtype == np.float64
    ref = infer.AesPredictor(checkpoint_pth=str(checkpoint), precision="32")
    rows = ref.forward([{"path": torch.from_numpy(c)[None], "sample_rate": 16000} for c in clips])
    want = np.array([[row[a] for a in AXES] for row in rows])
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)
    # random weights still give distinct, non-constant outputs per axis and per clip
    assert np.ptp(ours, axis=0).min() > 1e-4


def test_safetensors_folder_and_files(checkpoint, ours, clips, tmp_path):
    from safetensors.torch import save_file

    ckpt = torch.load(checkpoint, weights_only=True)
    save_file({k[len("model."):]: v.contiguous() for k, v in ckpt["state_dict"].items()},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(__import__("json").dumps(CONFIG | {"target_transform": TRANSFORM}))
    sf.write(tmp_path / "a.wav", clips[1], 16000)
    table = AudioboxAesthetics(tmp_path).score_files([tmp_path / "a.wav"])
    assert list(table.columns) == ["file", *AXES]
    np.testing.assert_allclose(table[list(AXES)].to_numpy(), ours.score_audio(clips[1:]),
                               rtol=1e-4, atol=1e-4)


def test_bad_checkpoints(tmp_path):
    with pytest.raises(InputError, match="no such audiobox-aesthetics checkpoint"):
        AudioboxAesthetics(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RewardkitError, match=r"not an audiobox-aesthetics checkpoint\.pt"):
        AudioboxAesthetics(tmp_path / "junk.pt").score_audio([np.zeros(16000, np.float32)])
    with pytest.raises(InputError, match="precision"):
        AudioboxAesthetics(tmp_path / "junk.pt", precision="8")
