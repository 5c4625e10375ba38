"""benchmarks/bench_dragon.py: every benchmark entry is a valid `finetune run`, and the report groups reruns."""

import json

import pytest
from benchmark_scripts import load

from finetune.loop import RunConfig
from rewardkit_cli.finetune_run_cmds import run_cmd


@pytest.fixture(scope="module")
def bench():
    return load("bench_dragon")


def _options(bench, name, tmp_path, extra=()):
    """The options `finetune run` would get from `bench_dragon.py run NAME`, parsed by the real command."""
    args = ["--ref", str(tmp_path), *bench.COMMON, *bench.RUNS[name][1], "--max-minutes", "18", "--threads", "2",
            "-o", str(tmp_path / name), "--overwrite", *extra]
    ctx = run_cmd.make_context("run", args)
    return {k: v for k, v in ctx.params.items() if v is not None}


def test_every_entry_is_a_valid_run_config(bench, tmp_path):
    for name, (optimised, _) in bench.RUNS.items():
        options = _options(bench, name, tmp_path)
        for key in ("output", "overwrite", "quiet", "threads", "config_file", "resume_dir"):
            options.pop(key, None)
        config = RunConfig.from_dict(options, name)              # raises on a bad value or combination
        terms = [term.split("*")[-1].split("?")[0] for term in config.reward.split("+")]
        assert terms == [f"rewardkit:{reward}" for reward in optimised.split("+")], name
        assert config.max_minutes == 18 and config.heldout_size == 64 and config.eval_steps == 20, name


def test_an_entrys_own_flags_and_extra_flags_win_over_the_common_ones(bench, tmp_path):
    options = _options(bench, "clap_score-k8-u8-lr1e-5-ema", tmp_path, extra=["--seed", "3"])
    assert options["lr"] == 1e-5 and options["updates_per_round"] == 8 and options["ema"] == 0.995
    assert (options["prompts_per_round"], options["samples_per_prompt"]) == (4, 8)
    assert options["seed"] == 3 and options["beta"] == 500


def _record(name, target, win):
    rewards = [{"spec": spec, "before": 1.0, "after": 1.5, "win_rate": win if spec == target else 0.5,
                "win_lo": 0.4, "win_hi": 0.9, "optimised": spec == target} for spec in
               ["rewardkit:clap_score", "rewardkit:per_song_fad", "rewardkit:fad", "rewardkit:aesthetics",
                "rewardkit:vendi"]]
    return {"bench_run": name, "rewards": rewards, "rounds_done": 10, "train_seconds": 600.0, "threads": 2}


def test_report_lists_labelled_reruns_under_their_entry_in_runs_order(bench, tmp_path):
    records = {"fad-lr1e-5": _record("fad-lr1e-5", "rewardkit:fad", 1.0),
               "clap-again": _record("clap_score", "rewardkit:clap_score", 0.75),
               "clap_score": _record("clap_score", "rewardkit:clap_score", 0.5)}
    for label, record in records.items():
        (tmp_path / f"{label}.json").write_text(json.dumps(record))
    rows = bench.report(tmp_path).splitlines()[2:]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == ["clap-again", "clap_score", "fad-lr1e-5"]
    assert "| 75.0% [40, 90] |" in rows[0] and "**1 -> 1.5 (75%)**" in rows[0]
    assert rows[2].count("**") == 2                                 # only the optimised reward's cell is bold


def test_a_saved_record_lands_whole_in_every_folder_and_the_report_reads_it(bench, tmp_path):
    record = _record("fad-lr1e-5", "rewardkit:fad", 1.0)
    folders = [tmp_path / "run-root", tmp_path / "records" / "dragon"]
    bench.save_record(record, "fad-s1", folders)
    for folder in folders:
        assert [p.name for p in folder.iterdir()] == ["fad-s1.json"]        # no temporary file left behind
        assert json.loads((folder / "fad-s1.json").read_text()) == record
    assert bench.report(folders[1]).splitlines()[2].startswith("| fad-s1 | 10 |")


def test_fresh_prompts_are_new_to_training_and_to_the_selection_set(bench):
    from finetune.prompts import load_prompts

    used = load_prompts("synth")                                        # every benchmark run's prompt source
    fresh = bench.fresh_prompts()
    assert len(fresh) == len(set(fresh)) == 64
    assert not set(fresh) & set(used.train) and not set(fresh) & set(used.heldout)
    assert fresh == bench.fresh_prompts()                               # the same set every time
