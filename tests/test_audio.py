import numpy as np
import pytest
import soundfile as sf
from audio_files import tone, write_bad_files, write_odd_but_good_files
from hypothesis import given
from hypothesis import strategies as st

from rewardkit.audio import LoadOptions, find_audio, frame_windows, load_audio, stream_audio
from rewardkit.encoders import Windowing
from rewardkit.errors import AudioError, InputError


# ---------------------------------------------------------------- windowing
@given(n=st.integers(1, 300), window=st.integers(1, 64), hop=st.integers(1, 64),
       splits=st.lists(st.integers(0, 300), max_size=6), pad=st.sampled_from(["repeat", "repeatpad", "zero"]))
def test_windows_do_not_depend_on_block_boundaries(n, window, hop, splits, pad):
    x = np.arange(n, dtype=np.float32) + 1
    w = Windowing(window, hop, pad)
    whole = list(frame_windows(iter([x]), w))
    blocks = np.split(x, sorted(s for s in splits if s < n))
    pieces = list(frame_windows(iter(blocks), w))
    assert len(whole) == len(pieces)
    assert all(np.array_equal(a, b) for a, b in zip(whole, pieces, strict=True))
    assert all(a.shape == (window,) for a in whole)
    if n >= window:  # full windows every hop, then one aligned to the end if needed: every sample covered
        starts = [int(a[0]) - 1 for a in whole]
        assert starts[: (n - window) // hop + 1] == list(range(0, n - window + 1, hop))
        assert int(whole[-1][-1]) == n
    else:
        assert len(whole) == 1


def test_short_clip_padding():
    x = np.array([1, 2, 3], np.float32)
    assert next(iter(frame_windows(iter([x]), Windowing(7, 7, "repeat")))).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert next(iter(frame_windows(iter([x]), Windowing(7, 7, "zero")))).tolist() == [1, 2, 3, 0, 0, 0, 0]
    assert next(iter(frame_windows(iter([x]), Windowing(7, 7, "repeatpad")))).tolist() == [1, 2, 3, 1, 2, 3, 0]
    with pytest.raises(InputError, match="pad: expected one of 'repeat', 'repeatpad', 'zero'"):
        Windowing(7, 7, "reflect")


# ---------------------------------------------------------------- loading
def test_resampling_keeps_pitch_and_duration(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(1000, 2.0, 44100, amp=0.5), 44100)
    y = load_audio(path, 16000)
    assert y.dtype == np.float32 and abs(len(y) - 32000) <= 2
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spectrum) * 16000 / len(y) == pytest.approx(1000, abs=1)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_long_files_are_streamed_in_blocks_with_the_same_result(tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, tone(300, 6.0, 22050), 22050)
    blocks = list(stream_audio(path, 16000, options=LoadOptions(block_seconds=0.5)))
    # the last block also carries the resampler's flushed tail
    assert len(blocks) >= 10 and max(len(b) for b in blocks[:-1]) <= 1.05 * 0.5 * 16000
    streamed = np.concatenate(blocks)
    whole = load_audio(path, 16000, options=LoadOptions(block_seconds=60))
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


def test_downmix_is_the_channel_mean(tmp_path):
    x = tone(500, 1.0, 16000)
    sf.write(tmp_path / "st.wav", np.stack([x, 0.5 * x], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "st.wav", 16000), 0.75 * x, atol=1e-6)


def test_every_bad_file_gets_a_clear_message_naming_it(tmp_path):
    expected = write_bad_files(tmp_path)
    for name, fragment in expected.items():
        with pytest.raises(AudioError) as info:
            load_audio(tmp_path / name, 16000)
        message = str(info.value)
        assert message.startswith(str(tmp_path / name)) and fragment in message, message
        assert "\n" not in message


def test_silence_can_be_allowed(tmp_path):
    sf.write(tmp_path / "s.wav", np.zeros(8000, np.float32), 16000)
    assert not load_audio(tmp_path / "s.wav", 16000, options=LoadOptions(allow_silence=True)).any()


def test_odd_files_load(tmp_path):
    names = write_odd_but_good_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio(tmp_path)] == names
    for name in names:
        y = load_audio(tmp_path / name, 16000)
        assert len(y) == pytest.approx(1.5 * 16000, abs=1200), name   # mp3 adds encoder delay/padding
        spectrum = np.abs(np.fft.rfft(y))
        assert np.argmax(spectrum) * 16000 / len(y) == pytest.approx(330, abs=3), name


def test_find_audio_needs_a_directory(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        find_audio(tmp_path / "missing")
    assert find_audio(tmp_path) == []
