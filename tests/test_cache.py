import hashlib
import multiprocessing
import os
import shutil

import numpy as np
import pytest
from audio_files import write_bad_files, write_good_set

import rewardkit.embedding as embedding_module
from rewardkit import encoders
from rewardkit.cache import EmbeddingCache, default_cache_dir
from rewardkit.embedding import embed_directory


@pytest.fixture(scope="module")
def mel():
    return encoders.get("mel", device="cpu")


def _entries(cache):
    return cache.stats().entries


def test_renamed_or_moved_file_hits_and_edited_file_misses(tmp_path, mel, monkeypatch):
    src = tmp_path / "a"
    write_good_set(src, 3)
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_directory(src, mel, cache=cache)
    assert [f.cached for f in first.files] == [False] * 3 and _entries(cache) == 3

    moved = tmp_path / "b" / "deeper"
    moved.mkdir(parents=True)
    shutil.move(src / "clip_00.wav", moved / "renamed.wav")
    shutil.move(src / "clip_01.wav", moved / "clip_01.wav")
    second = embed_directory(tmp_path / "b", mel, cache=cache)
    assert [(f.file, f.cached) for f in second.files] == [("deeper/clip_01.wav", True), ("deeper/renamed.wav", True)]
    np.testing.assert_array_equal(second.files[1].frames, first.files[0].frames)

    data = bytearray((moved / "clip_01.wav").read_bytes())
    data[-100] ^= 0x55                                     # edit one sample
    (moved / "clip_01.wav").write_bytes(bytes(data))
    third = embed_directory(tmp_path / "b", mel, cache=cache)
    assert [f.cached for f in third.files] == [False, True]


def test_warm_run_decodes_nothing(tmp_path, mel, monkeypatch):
    write_good_set(tmp_path / "a", 3)
    cache = EmbeddingCache(tmp_path / "cache")
    cold = embed_directory(tmp_path / "a", mel, cache=cache)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a warm run decoded audio")

    monkeypatch.setattr(embedding_module, "stream_audio", no_decoding)
    warm = embed_directory(tmp_path / "a", mel, cache=cache)
    assert all(f.cached for f in warm.files) and not warm.errors
    for a, b in zip(cold.files, warm.files, strict=True):
        assert b.frames.dtype == np.float32
        np.testing.assert_array_equal(a.frames, b.frames)


def test_other_encoder_settings_do_not_share_entries(tmp_path, mel):
    write_good_set(tmp_path / "a", 2)
    cache = EmbeddingCache(tmp_path / "cache")
    embed_directory(tmp_path / "a", mel, cache=cache)
    other = encoders.get("mel", n_mels=32, device="cpu")
    assert other.fingerprint() != mel.fingerprint()
    result = embed_directory(tmp_path / "a", other, cache=cache)
    assert not any(f.cached for f in result.files) and result.files[0].frames.shape[1] == 32
    assert sorted(cache.stats().by_encoder.values()) == [2, 2]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "text"])
def test_damaged_entries_are_recomputed_not_trusted(tmp_path, mel, damage):
    write_good_set(tmp_path / "a", 1)
    cache = EmbeddingCache(tmp_path / "cache")
    good = embed_directory(tmp_path / "a", mel, cache=cache).files[0].frames
    (entry,) = (tmp_path / "cache").glob("*/*/*.npz")
    raw = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"\x00" * len(raw))
    elif damage == "text":  # a well-formed entry, right key and checksum, whose data are not numbers
        text = np.array(["not", "floats"])
        with np.load(entry) as z:
            np.savez(entry, embeddings=text, key=z["key"], digest=hashlib.sha256(text.tobytes()).hexdigest())
    else:  # same size, one float changed: only the checksum can tell
        arr = np.load(entry)["embeddings"]
        arr[0, 0] += 1.0
        with np.load(entry) as z:
            np.savez(entry, embeddings=arr, key=z["key"], digest=z["digest"])
    again = embed_directory(tmp_path / "a", mel, cache=cache).files[0]
    assert not again.cached
    np.testing.assert_array_equal(again.frames, good)
    assert embed_directory(tmp_path / "a", mel, cache=cache).files[0].cached   # rewritten


def test_failed_files_leave_nothing_in_the_cache(tmp_path, mel):
    write_good_set(tmp_path / "set", 2)
    bad = write_bad_files(tmp_path / "set" / "bad")
    cache = EmbeddingCache(tmp_path / "cache")
    result = embed_directory(tmp_path / "set", mel, cache=cache)
    assert len(result.files) == 2 and _entries(cache) == 2
    assert sorted(e.file for e in result.errors) == sorted(f"bad/{n}" for n in bad)
    for e in result.errors:
        assert e.error.startswith(e.file + ": ") and bad[e.file[4:]] in e.error
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def _writer(root, key, value):
    cache = EmbeddingCache(root)
    for _ in range(30):
        cache.put("mel:0123456789abcdef", key, np.full((50, 8), value, np.float32))


def test_concurrent_writers_leave_a_valid_entry(tmp_path):
    key = "ab" * 32
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, key, float(v))) for v in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    got = EmbeddingCache(tmp_path).get("mel:0123456789abcdef", key, 8)
    assert got is not None and got.shape == (50, 8) and len(set(got.ravel().tolist())) == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_location_precedence_info_and_clear(tmp_path, monkeypatch, mel):
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "from_env"))
    assert default_cache_dir() == tmp_path / "from_env"
    assert EmbeddingCache().root == tmp_path / "from_env"
    assert EmbeddingCache(tmp_path / "explicit").root == tmp_path / "explicit"
    monkeypatch.delenv("REWARDKIT_CACHE")
    assert "rewardkit" in str(default_cache_dir())

    root = tmp_path / "c"
    write_good_set(tmp_path / "a", 2)
    cache = EmbeddingCache(root)
    embed_directory(tmp_path / "a", mel, cache=cache)
    (root / "my-notes").mkdir()                      # not ours: never touched
    (root / "my-notes" / "keep.txt").write_text("x")
    stats = cache.stats()
    assert stats.entries == 2 and stats.bytes > 0 and list(stats.by_encoder) == [mel.fingerprint().replace(":", "-")]
    assert cache.clear(encoder="crepe") == 0 and cache.stats().entries == 2
    assert cache.clear() == 2 and cache.stats().entries == 0
    assert (root / "my-notes" / "keep.txt").exists()


def test_cache_root_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    from rewardkit.errors import CacheError

    with pytest.raises(CacheError, match="not a directory"):
        EmbeddingCache(tmp_path / "file")
    assert os.path.exists(tmp_path / "file")
