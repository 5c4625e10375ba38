"""The scoring pipeline with the real CLAP architecture (random weights, laion-clap's transformer tower)."""

import json

import numpy as np
import pytest
import soundfile as sf
from audio_files import tone
from click.testing import CliRunner

import rewardkit as rk
from rewardkit import encoders
from rewardkit_cli.rewardkit_main import main

CLAP = {"random_init": True, "tmodel": "transformer", "device": "cpu"}
CLAP_ARGS = ["-e", "clap", "-O", "random_init=true", "-O", "tmodel=transformer"]


@pytest.fixture(scope="module")
def clap():
    return encoders.get("clap", **CLAP)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clapdata")
    (root / "gen" / "sub").mkdir(parents=True)
    (root / "ref").mkdir()
    for i, f in enumerate((220, 330, 440)):
        sf.write(root / "gen" / ("sub" if i == 2 else "") / f"g{i}.wav", tone(f, 3.0, 44100, seed=i), 44100)
    for i, f in enumerate((200, 300, 500, 600)):
        sf.write(root / "ref" / f"r{i}.flac", tone(f, 2.0, 22050, seed=10 + i), 22050)
    (root / "captions.txt").write_text("a low drone\na bright whistle\na steady hum\n")
    prompts = {"g0.wav": "a low drone", "g1.wav": "a bright whistle", "sub/g2.wav": "a steady hum"}
    lines = ["file,prompt"] + [f"{k},{v}" for k, v in reversed(prompts.items())]   # not in listing order
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root, prompts


def test_clap_score_pairs_each_file_with_its_own_prompt(clap, data, tmp_path):
    root, prompts = data
    report = rk.score(root / "gen", root / "ref", encoder=clap, prompts=root / "manifest.csv", cache_dir=tmp_path)
    table = report.per_song.set_index("file")
    gen = rk.embedding.embed_directory(root / "gen", clap)
    for f in gen.files:
        text = clap.embed_text([prompts[f.file]])
        expected = rk.cosine_scores(f.pooled[None], text)[0]
        assert table.loc[f.file, "clap_score"] == pytest.approx(expected, abs=1e-6)
        assert table.loc[f.file, "prompt"] == prompts[f.file]
    assert report.metrics["clap_score"] == pytest.approx(table["clap_score"].mean(), rel=1e-12)
    swapped = dict(zip(prompts, reversed(list(prompts.values())), strict=True))
    other = rk.score(root / "gen", root / "ref", encoder=clap, prompts=swapped, cache_dir=tmp_path)
    assert not np.allclose(other.per_song["clap_score"], report.per_song["clap_score"])


def test_caption_reference_through_the_cli(data, tmp_path):
    root, _ = data
    r = CliRunner().invoke(main, ["score", *CLAP_ARGS, "--ref", str(root / "captions.txt"), str(root / "gen"),
                                  "--prompts", str(root / "manifest.csv"), "--format", "json",
                                  "--cache-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    data_out = json.loads(r.stdout)
    m = data_out["metrics"]
    assert m["files"] == 3 and np.isfinite(m["fad"]) and np.isfinite(m["kad"]) and -1 <= m["clap_score"] <= 1
    assert data_out["encoder"]["name"] == "clap" and data_out["encoder"]["modalities"] == ["audio", "text"]
    built = CliRunner().invoke(main, ["ref", "build", "--text", str(root / "captions.txt"), *CLAP_ARGS,
                                      "-o", str(tmp_path / "text.npz")])
    assert built.exit_code == 0, built.output
    ref = rk.Reference.load(tmp_path / "text.npz")
    assert ref.kind == "text" and ref.items.shape == (3, 512) and ref.stats.count == 3


def test_missing_checkpoint_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.delenv("REWARDKIT_CLAP_CKPT", raising=False)
    (tmp_path / "g").mkdir()
    r = CliRunner().invoke(main, ["score", "-e", "clap", "--ref", str(tmp_path / "g"), str(tmp_path / "g")])
    assert r.exit_code == 1
    (line,) = r.stderr.strip().splitlines()
    assert "no checkpoint" in line and "--clap-ckpt" in line and "REWARDKIT_CLAP_CKPT" in line
