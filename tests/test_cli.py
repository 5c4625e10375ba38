import json
import subprocess
import sys

import click
from click.testing import CliRunner

import rewardkit
from rewardkit.errors import InputError
from rewardkit_cli._common import ToolGroup, debug_option
from rewardkit_cli.finetune_main import main as finetune_main
from rewardkit_cli.rewardkit_main import main as rewardkit_main


def test_demo_prints_every_metric_and_each_reacts_as_expected():
    result = CliRunner().invoke(rewardkit_main, ["demo", "--embeddings", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["set"]: r for r in json.loads(result.output)}
    assert set(rows) == {"same", "shifted", "collapsed", "noisy"}
    same = rows["same"]
    assert rows["shifted"]["fad"] > 2 * same["fad"] and rows["shifted"]["kad"] > same["kad"] + 0.01
    assert rows["collapsed"]["vendi"] < 0.5 * same["vendi"]
    assert rows["noisy"]["per_song_fad_mean"] > same["per_song_fad_mean"]


def test_demo_is_deterministic_and_table_is_default():
    runner = CliRunner()
    first = runner.invoke(rewardkit_main, ["demo", "--embeddings"])
    second = runner.invoke(rewardkit_main, ["demo", "--embeddings"])
    assert first.exit_code == 0 and first.output == second.output
    assert first.output.split()[:5] == ["fad", "kad", "per_song_fad_mean", "vendi", "similarity_max"]
    other = runner.invoke(rewardkit_main, ["demo", "--embeddings", "--seed", "1", "--format", "csv"])
    assert other.output.startswith("set,fad,kad") and other.output != first.output


def test_version_and_usage_errors():
    runner = CliRunner()
    version = runner.invoke(rewardkit_main, ["--version"]).output.strip()
    assert version == f"rewardkit, version {rewardkit.__version__}"
    assert runner.invoke(finetune_main, ["--version"]).exit_code == 0
    bad = runner.invoke(rewardkit_main, ["demo", "--embeddings", "--format", "xml"])
    assert bad.exit_code == 2 and "xml" in bad.output


def _failing_tool():
    @click.group(cls=ToolGroup)
    @debug_option
    def tool(debug):
        pass

    @tool.command()
    def go():
        raise InputError("x: contains 1 NaN/Inf value(s)")

    return tool


def test_library_errors_become_one_line_and_exit_1():
    result = CliRunner().invoke(_failing_tool(), ["go"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["tool: error: x: contains 1 NaN/Inf value(s)"]
    debug = CliRunner().invoke(_failing_tool(), ["--debug", "go"])
    assert debug.exit_code == 1 and "Traceback" in debug.output


def test_console_scripts_are_installed():
    out = subprocess.run([sys.executable, "-m", "rewardkit_cli.rewardkit_main", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout


def test_audio_demo_scores_every_set_and_writes_a_plot(tmp_path):
    result = CliRunner().invoke(rewardkit_main, ["demo", "-o", str(tmp_path / "d"), "--n", "8", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["set"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"clean", "degraded", "off-prompt"}
    assert rows["clean"]["synthclap:clap_score"] > rows["off-prompt"]["synthclap:clap_score"] + 0.3
    assert rows["clean"]["synthclap:aesthetics"] > rows["degraded"]["synthclap:aesthetics"]
    assert rows["clean"]["mel:aesthetics"] > rows["degraded"]["mel:aesthetics"] + 0.5       # the mel head ships too
    assert rows["degraded"]["mel:per_song_fad_mean"] > rows["clean"]["mel:per_song_fad_mean"]
    png = tmp_path / "d" / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote the plot to {png}" in result.stderr


def test_json_output_is_strict_json_with_null_for_missing_values(capsys):
    import pandas as pd

    from rewardkit_cli._common import emit_frame

    frame = pd.DataFrame({"reward": ["fad", "clap_score"], "win_rate": [0.88, 0.75],
                          "win_lo": [float("nan"), 0.63]}).set_index("reward")
    emit_frame(frame, "json")

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name} in the output")

    rows = json.loads(capsys.readouterr().out, parse_constant=no_constants)
    assert rows == [{"reward": "fad", "win_rate": 0.88, "win_lo": None},
                    {"reward": "clap_score", "win_rate": 0.75, "win_lo": 0.63}]
