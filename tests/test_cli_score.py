import json

import pandas as pd
import pytest
from audio_files import write_bad_files, write_good_set
from click.testing import CliRunner

from rewardkit.reference import Reference
from rewardkit_cli.rewardkit_main import main


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_good_set(root / "ref", 5, base=200.0, seed=0)
    write_good_set(root / "gen", 3, base=260.0, seed=10)
    write_good_set(root / "clean", 3, base=260.0, seed=20)
    write_bad_files(root / "gen" / "broken")
    (root / "empty").mkdir()
    return root


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_score_json_has_the_documented_shape_and_failed_files_do_not_fail_the_run(sets, tmp_path):
    r = run("score", "--encoder", "mel", "--ref", sets / "ref", sets / "gen", "--format", "json",
            "--cache-dir", tmp_path, "--per-song", tmp_path / "songs.csv")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data) == {"metrics", "per_song", "errors", "encoder", "notes"}
    assert {"fad", "kad", "vendi", "per_song_fad_mean", "per_song_fad_median"} <= set(data["metrics"])
    assert [row["file"] for row in data["per_song"]] == ["clip_00.wav", "clip_01.wav", "clip_02.wav"]
    assert len(data["errors"]) == 9 and all(set(e) == {"file", "error"} for e in data["errors"])
    assert data["encoder"]["name"] == "mel"
    songs = pd.read_csv(tmp_path / "songs.csv")
    assert list(songs["file"]) == ["clip_00.wav", "clip_01.wav", "clip_02.wav"]
    assert "rewardkit: skipped broken/empty.wav: is empty (0 bytes)" in r.stderr


def test_score_table_and_csv(sets, tmp_path):
    table = run("score", "-e", "mel", "--ref", sets / "ref", sets / "clean", "--cache-dir", tmp_path)
    assert table.exit_code == 0 and table.stdout.split()[:2] == ["value", "metric"]
    assert "fad" in table.stdout and "kad" in table.stdout
    csv = run("score", "-e", "mel", "--ref", sets / "ref", sets / "clean", "--cache-dir", tmp_path, "--format", "csv")
    frame = pd.read_csv(pd.io.common.StringIO(csv.stdout))
    assert frame.loc[0, "files"] == 3


def test_exit_codes(sets, tmp_path):
    strict = run("score", "-e", "mel", "--ref", sets / "ref", sets / "gen", "--strict", "--no-cache")
    assert strict.exit_code == 1 and "--strict" in strict.stderr
    empty = run("score", "-e", "mel", "--ref", sets / "ref", sets / "empty", "--no-cache")
    assert empty.exit_code == 1
    assert empty.stderr.strip().splitlines()[-1].startswith("rewardkit: error: ")
    assert "nothing could be scored" in empty.stderr and "Traceback" not in empty.output
    unknown = run("score", "-e", "vggish", "--ref", sets / "ref", sets / "gen")
    assert unknown.exit_code == 1 and "unknown name 'vggish'" in unknown.stderr
    usage = run("score", "-e", "mel", "--ref", sets / "missing", sets / "gen")
    assert usage.exit_code == 2
    debug = run("--debug", "score", "-e", "mel", "--ref", sets / "ref", sets / "empty", "--no-cache")
    assert debug.exit_code == 1 and "Traceback" in debug.output


def test_embed_ref_build_and_cache_commands(sets, tmp_path):
    cache = tmp_path / "cache"
    first = run("embed", sets / "gen", "-e", "mel", "--cache-dir", cache)
    assert first.exit_code == 0 and "embedded 3 file(s) (0 from the cache), 9 failed" in first.stderr
    second = run("embed", sets / "gen", "-e", "mel", "--cache-dir", cache)
    assert "embedded 3 file(s) (3 from the cache)" in second.stderr
    info = run("cache", "info", "--cache-dir", cache)
    assert info.exit_code == 0 and "entries: 3" in info.stdout

    out = tmp_path / "ref.npz"
    built = run("ref", "build", sets / "ref", "-e", "mel", "-o", out, "--cache-dir", cache)
    assert built.exit_code == 0, built.output
    ref = Reference.load(out)
    assert ref.items.shape[0] == 5 and ref.encoder.startswith("mel:")
    scored = run("score", "-e", "mel", "--ref", out, sets / "clean", "--format", "json", "--cache-dir", cache)
    assert scored.exit_code == 0 and json.loads(scored.stdout)["metrics"]["files"] == 3
    other = run("score", "-e", "mel", "-O", "n_mels=32", "--ref", out, sets / "clean", "--no-cache")
    assert other.exit_code == 1 and "rebuild the reference" in other.stderr

    neither = run("ref", "build", "-e", "mel", "-o", out)
    assert neither.exit_code == 2 and "exactly one of DIRECTORY or --text" in neither.output
    no_audio = run("ref", "build", sets / "empty", "-e", "mel", "-o", tmp_path / "x.npz", "--no-cache")
    assert no_audio.exit_code == 1 and "contains no audio files" in no_audio.stderr
    assert not (tmp_path / "x.npz").exists()

    cleared = run("cache", "clear", "--cache-dir", cache)
    assert cleared.exit_code == 0 and "removed 11 entries" in cleared.stdout


def test_encoders_command_lists_names():
    r = run("encoders")
    assert r.exit_code == 0 and {"clap", "crepe", "mel"} <= set(r.stdout.split())


def test_odd_files_are_scored_under_their_exact_names(tmp_path):
    from audio_files import write_odd_but_good_files

    names = write_odd_but_good_files(tmp_path / "odd")
    write_good_set(tmp_path / "ref", 3)
    r = run("score", "-e", "mel", "--ref", tmp_path / "ref", tmp_path / "odd", "--format", "json", "--no-cache")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert sorted(row["file"] for row in data["per_song"]) == names and data["errors"] == []


def test_allow_silence_flag(tmp_path):
    import numpy as np
    import soundfile as sf

    write_good_set(tmp_path / "ref", 3)
    (tmp_path / "gen").mkdir()
    sf.write(tmp_path / "gen" / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "gen" / "silence2.wav", np.zeros(16000, np.float32), 16000)
    refused = run("score", "-e", "mel", "--ref", tmp_path / "ref", tmp_path / "gen", "--no-cache")
    assert refused.exit_code == 1 and "is silent" in refused.stderr
    allowed = run("score", "-e", "mel", "--ref", tmp_path / "ref", tmp_path / "gen", "--no-cache",
                  "--allow-silence", "--format", "json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["metrics"]["files"] == 2
