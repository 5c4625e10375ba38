import numpy as np
import pytest
from audio_files import write_bad_files, write_good_set

import rewardkit as rk
from rewardkit import encoders
from rewardkit.aesthetics import AestheticsPredictor
from rewardkit.embedding import embed_directory
from rewardkit.errors import InputError
from rewardkit.reference import Reference, build_reference, read_captions
from rewardkit.scoring import _match_prompts, read_prompts


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    write_good_set(root / "ref", 6, base=200.0, seed=0)
    write_good_set(root / "gen", 4, base=260.0, seed=10)
    write_bad_files(root / "gen" / "broken")
    return root


@pytest.fixture(scope="module")
def mel():
    return encoders.get("mel", device="cpu")


def test_score_reports_every_metric_consistently_with_the_metric_core(sets, mel, tmp_path):
    report = rk.score(sets / "gen", sets / "ref", encoder=mel, cache_dir=tmp_path)
    m = report.metrics
    assert m["files"] == 4 and m["failed"] == 9
    gen = embed_directory(sets / "gen", mel)
    ref = embed_directory(sets / "ref", mel)
    ref_stats = rk.GaussianStats.from_samples(ref.frames())
    assert m["fad"] == pytest.approx(rk.frechet_distance(gen.frames(), ref_stats), rel=1e-9)
    assert m["kad"] == pytest.approx(rk.kernel_distance(gen.pooled(), ref.pooled()), rel=1e-9)
    assert m["vendi"] == pytest.approx(rk.vendi_score(gen.pooled()), rel=1e-9)
    per_song = rk.per_song_frechet([f.frames for f in gen.files], ref_stats)
    assert m["per_song_fad_mean"] == pytest.approx(per_song.mean(), rel=1e-9)
    assert m["per_song_fad_median"] == pytest.approx(np.median(per_song), rel=1e-9)
    assert list(report.per_song["file"]) == [f"clip_{i:02d}.wav" for i in range(4)]
    # mel ships an aesthetics head, so its rating is a column too (and agrees with the head on the same frames)
    assert list(report.per_song.columns) == ["file", "frames", "per_song_fad", "ref_similarity", "aesthetics"]
    head = AestheticsPredictor.default_for("mel")
    np.testing.assert_allclose(report.per_song["aesthetics"], head.score_set(gen), rtol=1e-9)
    assert m["aesthetics"] == pytest.approx(report.per_song["aesthetics"].mean(), rel=1e-12)
    assert {e.file for e in report.errors} == {f"broken/{n}" for n in write_bad_files(tmp_path / "names")}
    d = report.to_dict()
    assert set(d) >= {"metrics", "per_song", "errors", "encoder"}
    assert d["encoder"]["fingerprint"] == mel.fingerprint() and d["per_song"][0]["file"] == "clip_00.wav"


def test_a_saved_reference_gives_the_same_scores(sets, mel, tmp_path):
    direct = rk.score(sets / "gen", sets / "ref", encoder=mel, use_cache=False)
    build_reference(sets / "ref", mel).save(tmp_path / "ref.npz")
    loaded = Reference.load(tmp_path / "ref.npz")
    assert loaded.encoder == mel.fingerprint() and loaded.items.shape == (6, mel.dim)
    from_file = rk.score(sets / "gen", tmp_path / "ref.npz", encoder=mel, use_cache=False)
    for k in ("fad", "kad", "per_song_fad_mean", "vendi"):
        assert from_file.metrics[k] == pytest.approx(direct.metrics[k], rel=1e-5)


def test_stats_of_another_encoder_are_refused(sets, mel, tmp_path):
    build_reference(sets / "ref", mel).save(tmp_path / "ref.npz")
    other = encoders.get("mel", fmax=4000.0, device="cpu")
    with pytest.raises(InputError, match=r"reference built with encoder mel:.*rebuild the reference"):
        rk.score(sets / "gen", tmp_path / "ref.npz", encoder=other, use_cache=False)


def test_empty_and_unusable_directories(sets, mel, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="nothing could be scored \\(no audio files found\\)"):
        rk.score(tmp_path / "empty", sets / "ref", encoder=mel, use_cache=False)
    with pytest.raises(InputError, match="empty: contains no audio files"):
        rk.score(sets / "gen", tmp_path / "empty", encoder=mel, use_cache=False)
    write_bad_files(tmp_path / "bad")
    with pytest.raises(InputError, match="contains no usable audio files; 9 file\\(s\\) failed"):
        rk.score(sets / "gen", tmp_path / "bad", encoder=mel, use_cache=False)
    nothing = r"nothing could be scored \(9 file\(s\) failed, e\.g\. all_zero\.wav: is silent"
    with pytest.raises(InputError, match=nothing):
        rk.score(tmp_path / "bad", sets / "ref", encoder=mel, use_cache=False)
    with pytest.raises(InputError, match="no such reference"):
        rk.score(sets / "gen", tmp_path / "missing.npz", encoder=mel, use_cache=False)


def test_prompts_are_matched_by_name_never_by_order(tmp_path):
    files = ["a/x.wav", "b/y.wav", "z.wav"]
    assert _match_prompts(files, {"z.wav": "p3", "b/y.wav": "p2", "a/x.wav": "p1"}) == {
        "a/x.wav": "p1", "b/y.wav": "p2", "z.wav": "p3"}
    assert _match_prompts(files, {"y.wav": "by name", "other.wav": "unused"}) == {"b/y.wav": "by name"}
    # an ambiguous bare name matches nothing rather than guessing
    assert _match_prompts(["a/x.wav", "b/x.wav"], {"c/x.wav": "1", "d/x.wav": "2"}) == {}
    (tmp_path / "p.csv").write_text("prompt,file\nsecond,b/y.wav\nfirst,a/x.wav\n")
    assert read_prompts(tmp_path / "p.csv") == {"b/y.wav": "second", "a/x.wav": "first"}


@pytest.mark.parametrize("content, message", [
    ("name,text\nx.wav,hi\n", "needs columns file,prompt"),
    ("file,prompt\n", "is empty"),
    ("file,prompt\nx.wav,a\nx.wav,b\n", "listed twice"),
])
def test_bad_prompt_manifests(tmp_path, content, message):
    (tmp_path / "p.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        read_prompts(tmp_path / "p.csv")


def test_caption_files(tmp_path, mel):
    (tmp_path / "c.txt").write_text("a bright pluck melody\n\n  slow dark pad  \n")
    assert read_captions(tmp_path / "c.txt") == ["a bright pluck melody", "slow dark pad"]
    (tmp_path / "c.csv").write_text("file,caption\n1.wav,fast drums\n")
    assert read_captions(tmp_path / "c.csv") == ["fast drums"]
    (tmp_path / "e.txt").write_text("\n\n")
    with pytest.raises(InputError, match="contains no captions"):
        read_captions(tmp_path / "e.txt")
    with pytest.raises(InputError, match="needs a cross-modal encoder"):
        build_reference(tmp_path / "c.txt", mel)
