"""DRAGON on the built-in model: does fine-tuning towards each reward beat the base on held-out prompts?

For each of five rewards (the project-trained encoder's text-audio score,
per-song FAD and dataset FAD to an exemplar set, aesthetics, Vendi) this runs
``finetune run`` on the shipped tiny_diffusion checkpoint with a wall-clock
budget, then ``finetune eval`` on the run's held-out prompts with *all five*
rewards, so the changes of the rewards that were not optimised (and reward
hacking) show up next to the target's win rate.

    python benchmarks/bench_dragon.py run clap_score --minutes 20     # one reward (run two at once on 2 cores)
    python benchmarks/bench_dragon.py run clap_score --label clap-2   # the same flags again, kept apart
    python benchmarks/bench_dragon.py run fad --label fad-s1 --seed 1 # other flags go on to `finetune run`
    python benchmarks/bench_dragon.py report                          # the table of all finished runs
    python benchmarks/bench_dragon.py fresh clap_score fad            # finished runs again, on fresh prompts

Exemplar set: a held-out corpus (``rewardkit synth make --seed 1``), made
here if missing. Everything lands in ``--root`` (default ``runs/bench-dragon``);
each finished run's record (its eval, flags, machine, date) is also copied to
``benchmarks/records/dragon/`` to be committed, so the RESULTS.md rows outlive
the scratch run folders (``report --root benchmarks/records/dragon``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rewardkit._fileio import atomic_write

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import describe  # noqa: E402

EXEMPLARS = "exemplars"
#: Committed copies of every finished run's record: `report --root benchmarks/records/dragon` reprints them.
RECORDS = HERE / "records" / "dragon"
#: Records of finished runs re-evaluated on fresh prompts (`fresh LABEL...`), likewise committed.
RECORDS_FRESH = HERE / "records" / "dragon-fresh"
#: Seed of the synthetic captions the fresh prompts come from (any seed but the runs' 0 and their held-out 7919).
FRESH_SEED = 104729
EVAL_REWARDS = ["rewardkit:clap_score", "rewardkit:per_song_fad", "rewardkit:fad", "rewardkit:aesthetics",
                "rewardkit:vendi"]
#: The CLAP runs' shared flags: all ordered pairs of 4 prompts x 8 samples.
CLAP_K8 = ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs", "--prompts-per-round", "4",
           "--samples-per-prompt", "8"]
#: Benchmark runs: name -> (the reward it optimises, its `finetune run` flags).
RUNS: dict[str, tuple[str, list[str]]] = {
    "clap_score": ("clap_score", ["--reward", "rewardkit:clap_score"]),
    # Every ordered pair of a prompt's K samples (6 pairs for K=4) instead of best vs worst: more signal
    # from the same generations (the best-worst run lowered the held-out CLAP score).
    "clap_score-allpairs": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs"]),
    # The same with a third of the learning rate: every run so far lowered the CLAP score as it drifted.
    "clap_score-allpairs-lr1e-5": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs",
                                                  "--lr", "1e-5"]),
    # 4 prompts x 8 samples: 28 ordered pairs a prompt, more contrast between a prompt's best and worst.
    "clap_score-allpairs-k8": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs",
                                              "--lr", "1e-5", "--prompts-per-round", "4", "--samples-per-prompt", "8"]),
    # The three all-pairs runs above were made before a prompt's pairs shared one timestep and noise
    # (finetune.loop.pair_batch, 2026-12-03); rerun now, they draw differently. Since then each sample is
    # denoised once per update, so all pairs of K=8 cost 8 samples a prompt, not 56: more updates a round.
    "clap_score-k8-u16": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs", "--lr", "1e-5",
                                         "--prompts-per-round", "4", "--samples-per-prompt", "8",
                                         "--updates-per-round", "16"]),
    "clap_score-p8k8-u8": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs", "--lr", "1e-5",
                                          "--prompts-per-round", "8", "--samples-per-prompt", "8",
                                          "--updates-per-round", "8"]),
    # clap_score-allpairs-k8's flags again, on the shared-draw code: each update costs 8 samples a prompt, not
    # 56, so the same minutes give ~3x the rounds of fresh generations (the u16 run reused each round's data
    # 16 times and fitted its noise instead). Run with --threads 2, nothing else on the machine.
    "clap_score-k8-fresh": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs",
                                           "--lr", "1e-5", "--prompts-per-round", "4", "--samples-per-prompt", "8"]),
    # The fresh run's implicit accuracy on new pairs stayed at 0.5 with loss above log 2: one (t, noise) draw
    # per sample is a noisy estimate of the likelihood ratio DPO needs. Four draws, averaged.
    "clap_score-k8-t4": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs",
                                        "--lr", "1e-5", "--prompts-per-round", "4", "--samples-per-prompt", "8",
                                        "--timesteps-per-sample", "4"]),
    # k8-fresh gained +0.013 at lr 1e-5 with a small KL proxy and the implicit accuracy at 0.5: twice the step
    # size along the same (mostly prompt-independent) direction. Run with --threads 2, alone.
    "clap_score-k8-fresh-lr2e-5": ("clap_score", ["--reward", "rewardkit:clap_score", "--splitter", "all-pairs",
                                                  "--lr", "2e-5", "--prompts-per-round", "4",
                                                  "--samples-per-prompt", "8"]),
    # The lr-2e-5 run again at 2 threads alone (232 rounds, 68.8%): with the same seeds, the per-prompt change has
    # mean +0.024 and sd 0.055 over the 64 held-out prompts, so the win rate is capped by the drift that helps no
    # prompt in particular. The final model as an EMA of the weights (decay 0.99: ~25 rounds) averages it out.
    "clap_score-k8-lr2e-5-ema": ("clap_score", [*CLAP_K8, "--lr", "2e-5", "--ema", "0.99"]),
    # The same trajectory (the EMA does not touch on-policy generation) averaged over ~50 rounds: decay 0.995.
    "clap_score-k8-lr2e-5-ema995": ("clap_score", [*CLAP_K8, "--lr", "2e-5", "--ema", "0.995"]),
    # The ema run with another training seed (other round prompts, sample seeds and timestep draws; the held-out
    # prompts and eval seeds stay): how stable is its 73.4%? 68.8%.
    "clap_score-k8-lr2e-5-ema-seed1": ("clap_score", [*CLAP_K8, "--lr", "2e-5", "--ema", "0.99", "--seed", "1"]),
    # EMA 0.99 (73.4%) beat 0.995 (70.3%); a larger step under the same averaging. It over-drove (DPO loss 3.5,
    # KL proxy 0.055 by round 120) and was stopped unevaluated.
    "clap_score-k8-lr3e-5-ema": ("clap_score", [*CLAP_K8, "--lr", "3e-5", "--ema", "0.99"]),
    # By round 230 the KL proxy is ~0.013, so beta 500 puts the DPO logit at ~5-10: saturated, and each update
    # follows the pairs the policy ranks wrong, which at one (t, noise) draw a sample are mostly draw noise.
    # beta 100 keeps the loss near its linear range, where every pair pulls with about the same weight.
    "clap_score-k8-lr2e-5-ema-b100": ("clap_score", [*CLAP_K8, "--lr", "2e-5", "--ema", "0.99", "--beta", "100"]),
    # It over-drove: KL proxy 0.07-0.1 after round 120, CLAP 0.489 -> 0.475 (47%), Vendi 10.3 -> 8.9. The saturated
    # beta 500 is the run's brake. At 2 threads a round spends 1.3 s generating, 1.7 s decoding (Griffin-Lim),
    # 0.3 s scoring and 1.4 s on 4 updates, so updates are the cheap part: twice as many at half the step
    # (each round's pairs seen under more (t, noise) draws), the EMA horizon kept at ~25 rounds.
    "clap_score-k8-u8-lr1e-5-ema": ("clap_score", [*CLAP_K8, "--lr", "1e-5", "--updates-per-round", "8",
                                                   "--ema", "0.995"]),
    # 78.1% [67, 86] at seed 0 (0.489 -> 0.510: a smaller mean gain than the ema run's, on more prompts). Seed 1:
    "clap_score-k8-u8-lr1e-5-ema-seed1": ("clap_score", [*CLAP_K8, "--lr", "1e-5", "--updates-per-round", "8",
                                                         "--ema", "0.995", "--seed", "1"]),
    # 73.4% [62, 83] at seed 1: 75.8% over the two seeds. Against the lr-2e-5 ema run, u8 at lr 1e-5 moves the
    # weights as far a round but with the (t, noise) draw noise of each step halved; the hypothesis: the win rate
    # follows the share of the final weight change that is signal, not its size. Once more: 16 updates a round at
    # 5e-6, the EMA horizon still ~25 rounds (400 updates). Training then takes ~4 s of a ~7 s round: ~130 rounds.
    "clap_score-k8-u16-lr5e-6-ema": ("clap_score", [*CLAP_K8, "--lr", "5e-6", "--updates-per-round", "16",
                                                    "--ema", "0.9975"]),
    # 78.1% [67, 86] at seed 0 (0.489 -> 0.512, 123 rounds). Seed 1:
    "clap_score-k8-u16-lr5e-6-ema-seed1": ("clap_score", [*CLAP_K8, "--lr", "5e-6", "--updates-per-round", "16",
                                                          "--ema", "0.9975", "--seed", "1"]),
    # 84.4% [74, 91] at seed 1 (142 rounds): 81.3% over the two seeds, >= 75% at both. The recipe for the CLAP score.
    # A third training seed, with the recipe fixed:
    "clap_score-k8-u16-lr5e-6-ema-seed2": ("clap_score", [*CLAP_K8, "--lr", "5e-6", "--updates-per-round", "16",
                                                          "--ema", "0.9975", "--seed", "2"]),
    # 85.9% [75, 92] at seed 2 (129 rounds): 82.8% over the three seeds.
    # Aesthetics from the mel head (PLCC 0.84; it hears detune and jitter) instead of synthclap's (0.74).
    "aesthetics-mel": ("aesthetics", ["--reward", "rewardkit:aesthetics?encoder=mel"]),
    "per_song_fad": ("per_song_fad", ["--reward", "rewardkit:per_song_fad"]),
    # Distribution rewards: pairs by leave-one-out contribution within each prompt (16 pairs of real signal a
    # round) rather than the set splitter's one set-vs-set comparison a round.
    "fad": ("fad", ["--reward", "rewardkit:fad", "--splitter", "best-worst"]),
    # On the beat-grid base (2026-12-03 22:16) generation is twice as fast, so 18 minutes give ~140 rounds, not ~70,
    # and at lr 3e-5 the fad and per_song_fad runs drifted (KL proxy 0.01-0.07, DPO loss 2-5, far above log 2)
    # and collapsed the set (Vendi 10.3 -> 5.8 / 9.4). A third of the step size:
    "fad-lr1e-5": ("fad", ["--reward", "rewardkit:fad", "--splitter", "best-worst", "--lr", "1e-5"]),
    "per_song_fad-lr1e-5": ("per_song_fad", ["--reward", "rewardkit:per_song_fad", "--lr", "1e-5"]),
    # per_song_fad-lr1e-5 made 75.0%, exactly the goal, in 93 rounds (three runs side by side). The same flags and
    # round count with an EMA of the weights as the final model (it does not touch on-policy generation, so at
    # seed 0 the trajectory is that run's): does the average keep the gain and drop the update noise, as for CLAP?
    "per_song_fad-lr1e-5-ema": ("per_song_fad", ["--reward", "rewardkit:per_song_fad", "--lr", "1e-5", "--ema", "0.99",
                                                 "--rounds", "93"]),
    # 82.8% [72, 90] at seed 0 (75.0% for the last weights of the same trajectory), 76.6% [65, 85] at seed 1; but
    # the clips drift towards the exemplar Gaussian and away from their captions (CLAP score 23% / 27%) and from
    # each other (Vendi 0% / 5%). The same with the CLAP score added to the reward as a guard (the two have about
    # the same spread over a round's clips, 0.15 and 0.14):
    "per_song_fad+clap_score-ema": ("per_song_fad+clap_score", [
        "--reward", "rewardkit:per_song_fad+rewardkit:clap_score", "--lr", "1e-5", "--ema", "0.99", "--rounds", "93"]),
    # Per-song FAD 77% / 73% (seeds 0 / 1), Vendi and FAD hurt less (26-28%, 48-70%), but the CLAP score still falls
    # (36% / 39%) and the sum itself wins 57.8% / 51.6%: a softer hack, not none.
    "vendi-lr1e-5": ("vendi", ["--reward", "rewardkit:vendi", "--splitter", "best-worst", "--lr", "1e-5"]),
    # The CLAP runs' flags (all pairs of 4 prompts x 8 samples, lr 1e-5) raised Vendi more than vendi-lr1e-5 did.
    "vendi-k8-allpairs": ("vendi", ["--reward", "rewardkit:vendi", "--splitter", "all-pairs", "--lr", "1e-5",
                                    "--prompts-per-round", "4", "--samples-per-prompt", "8"]),
    # On the held-out set a prompt's two clips have cosine 0.79 and clips of different prompts 0.22, so the eval
    # Vendi counts how distinct the prompts' outputs are. k8-allpairs made siblings more distinct (0.794 -> 0.784)
    # and prompts less (0.218 -> 0.234). With 16 prompts x 2 samples, the sibling a pair prefers is the one less
    # like the other prompts' clips.
    "vendi-p16k2": ("vendi", ["--reward", "rewardkit:vendi", "--splitter", "best-worst", "--lr", "1e-5",
                              "--prompts-per-round", "16", "--samples-per-prompt", "2"]),
    "vendi-p16k2-lr2e-5": ("vendi", ["--reward", "rewardkit:vendi", "--splitter", "best-worst", "--lr", "2e-5",
                                     "--prompts-per-round", "16", "--samples-per-prompt", "2"]),
    "aesthetics": ("aesthetics", ["--reward", "rewardkit:aesthetics"]),
    "vendi": ("vendi", ["--reward", "rewardkit:vendi", "--splitter", "best-worst"]),
}
COMMON = ["--prompts-per-round", "8", "--samples-per-prompt", "4", "--demo-steps", "10", "--eval-steps", "20",
          "--lr", "3e-5", "--beta", "500", "--updates-per-round", "4", "--checkpoint-every", "5", "--rounds", "400",
          "--heldout-size", "64", "--seed", "0", "--quiet"]


def sh(cmd: list[str], log: Path) -> None:
    print("$", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


def ensure_exemplars(root: Path, n: int) -> Path:
    folder = root / EXEMPLARS
    if not (folder / "metadata.csv").is_file():
        sh([sys.executable, "-m", "rewardkit_cli.rewardkit_main", "synth", "make", str(folder), "--n", str(n),
            "--seed", "1"], root / "exemplars.log")
    return folder


def run_one(name: str, root: Path, minutes: float, threads: int, extra: list[str], label: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    exemplars = ensure_exemplars(root, 200)
    label = label or name
    out = root / label
    log = root / f"{label}.log"
    started = time.time()
    # The run's own flags come after the common ones: click keeps an option's last value.
    sh([sys.executable, "-m", "rewardkit_cli.finetune_main", "run", "--ref", str(exemplars), *COMMON, *RUNS[name][1],
        "--max-minutes", str(minutes), "--threads", str(threads), "-o", str(out), "--overwrite", *extra], log)
    trained = time.time() - started
    sh([sys.executable, "-m", "rewardkit_cli.finetune_main", "eval", str(out), "--rewards", ",".join(EVAL_REWARDS),
        "--samples-per-prompt", "2", "--bootstrap", "1000", "--threads", str(threads), "--format", "json"], log)
    record = json.loads((out / "eval" / "eval.json").read_text())
    record.update({"bench_run": name, "train_seconds": trained, "eval_seconds": time.time() - started - trained,
                   "threads": threads,
                   "machine": describe(), "date": time.strftime("%Y-%m-%d %H:%M"),
                   "rounds_done": sum(json.loads(line)["round"] > 0
                                      for line in (out / "log.jsonl").read_text().splitlines()),
                   "flags": [*COMMON, *RUNS[name][1], "--max-minutes", str(minutes), *extra]})
    # The run folder is scratch; the record behind a RESULTS.md row is also kept in the repository.
    save_record(record, label, [root, RECORDS])


def save_record(record: dict, label: str, folders: list[Path]) -> None:
    """Write ``record`` as ``LABEL.json`` into each folder, atomically (a temporary file, then a rename)."""
    text = (json.dumps(record, indent=2) + "\n").encode()
    for folder in folders:
        with atomic_write(folder / f"{label}.json") as f:
            f.write(text)


def fresh_prompts(n: int = 64) -> list[str]:
    """``n`` captions that no benchmark run trained on and none was selected on.

    The recipes were tuned by looking at win rates on the runs' held-out prompts, so those carry the selection.
    These come from another caption seed, minus the training pool and minus that held-out set.
    """
    from finetune.prompts import load_prompts

    selection = set(load_prompts("synth").heldout)
    drawn = load_prompts("synth", heldout=f"synth:{FRESH_SEED}", heldout_size=2 * n).heldout   # minus the pool
    fresh = [p for p in drawn if p not in selection][:n]
    if len(fresh) < n:
        raise SystemExit(f"fresh prompts: only {len(fresh)} of {n} left after removing the used ones")
    return fresh


def eval_fresh(label: str, root: Path, threads: int, prompts: Path) -> None:
    """Evaluate a finished run (its record in ``root``) again, on ``prompts`` (:func:`fresh_prompts`), into
    RECORDS_FRESH."""
    trained = json.loads((root / f"{label}.json").read_text())
    out = root / label
    sh([sys.executable, "-m", "rewardkit_cli.finetune_main", "eval", str(out), "--rewards", ",".join(EVAL_REWARDS),
        "--prompts", str(prompts), "--samples-per-prompt", "2", "--bootstrap", "1000", "--threads", str(threads),
        "-o", str(out / "eval-fresh"), "--format", "json"], root / f"{label}.log")
    record = json.loads((out / "eval-fresh" / "eval.json").read_text())
    record.update({k: trained[k] for k in ("bench_run", "train_seconds", "rounds_done", "flags", "threads")})
    record.update({"prompt_set": f"fresh (synth:{FRESH_SEED} minus training pool and selection set)",
                   "eval_threads": threads, "machine": describe(), "date": time.strftime("%Y-%m-%d %H:%M")})
    save_record(record, label, [root / "fresh", RECORDS_FRESH])


def report(root: Path) -> str:
    lines = []
    # Each RUNS entry's records: the one named after it and any `--label`led reruns of it, in RUNS order.
    records = {path.stem: json.loads(path.read_text()) for path in sorted(root.glob("*.json"))}
    names = [label for name in RUNS for label, rec in records.items() if rec.get("bench_run", label) == name]
    header = "| optimised | rounds | train min | threads | target win rate | " + " | ".join(
        r.split(":")[1] for r in EVAL_REWARDS) + " |"
    lines += [header, "|" + "---|" * (5 + len(EVAL_REWARDS))]
    for name in names:
        rec = records[name]
        rows = {r["spec"]: r for r in rec["rewards"]}
        target = next(r for r in rec["rewards"] if r["optimised"])
        cells = []
        for spec in EVAL_REWARDS:
            r = rows[spec]
            mark = "**" if r is target else ""
            cells.append(f"{mark}{r['before']:.4g} -> {r['after']:.4g} ({100 * r['win_rate']:.0f}%){mark}")
        lo = "" if target["win_lo"] is None else f" [{100 * target['win_lo']:.0f}, {100 * target['win_hi']:.0f}]"
        if target["spec"] not in EVAL_REWARDS:              # e.g. a reward on another encoder: its own cell
            lo += f" ({target['spec']}: {target['before']:.4g} -> {target['after']:.4g})"
        lines.append(f"| {name} | {rec['rounds_done']} | {rec['train_seconds'] / 60:.1f} | {rec['threads']} | "
                     f"{100 * target['win_rate']:.1f}%{lo} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("run", help="fine-tune towards one reward, then evaluate")
    one.add_argument("reward", choices=sorted(RUNS))
    one.add_argument("--minutes", type=float, default=20.0)
    one.add_argument("--threads", type=int, default=1)
    one.add_argument("--label", help="name of the run folder and record (default: the RUNS name), for a rerun")
    again = sub.add_parser("fresh", help="evaluate finished runs again on 64 fresh prompts no recipe was chosen on")
    again.add_argument("labels", nargs="+", help="run labels with a record in --root")
    again.add_argument("--threads", type=int, default=1)
    sub.add_parser("report", help="print the markdown table of finished runs")
    parser.add_argument("--root", type=Path, default=Path("runs/bench-dragon"))
    # Anything else after `run NAME` goes to `finetune run` as it is (e.g. `--seed 1`; a `--` before it is optional).
    args, extra = parser.parse_known_args()
    extra = [flag for flag in extra if flag != "--"]
    if extra and args.what != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("REWARDKIT_CACHE", str(args.root / "cache"))    # exemplar embeddings, shared by runs
    os.environ.setdefault("FINETUNE_CACHE", str(args.root / "cache"))     # the base model's eval clips, likewise
    if args.what == "run":
        run_one(args.reward, args.root, args.minutes, args.threads, extra, args.label)
    if args.what == "fresh":
        prompts = args.root / "fresh_prompts.txt"
        with atomic_write(prompts) as f:
            f.write("".join(p + "\n" for p in fresh_prompts()).encode())
        for label in args.labels:
            eval_fresh(label, args.root, args.threads, prompts)
        print(report(args.root / "fresh"))
        return
    print(report(args.root))


if __name__ == "__main__":
    main()
