"""``finetune run``, ``finetune eval`` and ``finetune plot``: the DRAGON loop from the command line.

Thin: options become a :class:`finetune.loop.RunConfig` (defaults < ``--config FILE`` < flags) and the work
happens in :mod:`finetune.loop`, :mod:`finetune.evaluate` and :mod:`finetune.plot`.
"""

from __future__ import annotations

import json

import click

from ._common import FORMATS, emit_frame, invocation
from .finetune_cmds import threads_option

# (option, RunConfig field, click type, help). Every default is None, so a flag given wins over the config
# file and an absent one leaves the file's (or RunConfig's) value.
RUN_OPTIONS = [
    ("--reward", "reward", str, "Reward spec: rewardkit:NAME[?opts], W*SPEC+W*SPEC, or module:callable."),
    ("--ref", "ref", str, "Reference for rewards that need one: audio folder, .npz stats or captions file."),
    ("--encoder", "encoder", str, "Default encoder of rewardkit rewards [synthclap]."),
    ("--model", "model", str, "Model: tiny_diffusion (built in) or module:Class [tiny_diffusion]."),
    ("--checkpoint", "checkpoint", click.Path(exists=True, file_okay=False),
     "Base model folder [the checkpoint the model ships]."),
    ("--rounds", "rounds", click.IntRange(min=1), "Rounds [20]."),
    ("--prompts-per-round", "prompts_per_round", click.IntRange(min=1), "P prompts per round [8]."),
    ("--samples-per-prompt", "samples_per_prompt", click.IntRange(min=1), "K generations per prompt [4]."),
    ("--loss", "loss", click.Choice(["dpo", "kto"]), "Diffusion-DPO or Diffusion-KTO [dpo]."),
    ("--splitter", "splitter", click.Choice(["best-worst", "all-pairs", "set", "prompt", "batch"]),
     "Demonstration splitter [best-worst for DPO, prompt for KTO; set for distribution rewards]."),
    ("--beta", "beta", float, "DPO/KTO beta, no 1/2 folded in (Diffusion-DPO's 5000 = 2500 here) [2500]."),
    ("--lr", "lr", float, "AdamW learning rate [2e-5]."),
    ("--warmup", "warmup", click.IntRange(min=0), "Linear warm-up updates [0]."),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay [0]."),
    ("--grad-clip", "grad_clip", float, "Gradient norm clip, 0 for none [1]."),
    ("--updates-per-round", "updates_per_round", click.IntRange(min=1), "Optimiser steps per round [2]."),
    ("--timesteps-per-sample", "timesteps_per_sample", click.IntRange(min=1), "Timestep and noise draws per "
     "sample and step; the losses use the mean MSE over them (less noisy, N times the compute) [1]."),
    ("--batch-size", "batch_size", click.IntRange(min=0), "Pairs (DPO) or samples (KTO) per step; 0 = all [0]."),
    ("--ema", "ema", float, "EMA decay of the weights, 0 = off; the final model is the EMA [0]."),
    ("--demo-steps", "demo_steps", click.IntRange(min=1), "Sampler steps of on-policy generations [10]."),
    ("--eval-steps", "eval_steps", click.IntRange(min=1), "Sampler steps of held-out evaluations [20]."),
    ("--guidance", "guidance", float, "Classifier-free guidance scale [3]."),
    ("--prompts", "prompts", str, "Prompt source: synth[:SEED] (corpus captions) or a .txt/.csv file [synth]."),
    ("--prompt-column", "prompt_column", str, "CSV column holding the prompts [caption/prompt/text]."),
    ("--heldout-prompts", "heldout_prompts", str, "Held-out prompt source [split from --prompts]."),
    ("--heldout-size", "heldout_size", click.IntRange(min=1), "Held-out prompts kept apart [64]."),
    ("--seed", "seed", click.IntRange(min=0), "Run seed: prompts, generation seeds, noise [0]."),
    ("--checkpoint-every", "checkpoint_every", click.IntRange(min=0), "Checkpoint every N rounds [5]."),
    ("--keep-last", "keep_last", click.IntRange(min=0), "Round checkpoints to keep, 0 = all [2]."),
    ("--device", "device", str, "Torch device (cpu, cuda, cuda:1) [cpu]."),
    ("--eval-every", "eval_every", click.IntRange(min=0), "Score held-out prompts every N rounds, 0 = never [0]."),
    ("--eval-prompts", "eval_prompts", click.IntRange(min=1), "Held-out prompts per in-run evaluation [16]."),
    ("--lora-rank", "lora_rank", click.IntRange(min=0), "Train rank-R LoRA adapters instead of all weights; the "
     "reference is the model with adapters off; 0 = full fine-tune [0]."),
    ("--lora-alpha", "lora_alpha", click.FloatRange(min=0), "LoRA scale alpha (update x alpha/rank) [the rank]."),
    ("--max-minutes", "max_minutes", click.FloatRange(min=0), "Stop (with a checkpoint) after the round that "
     "exceeds this wall-clock budget; 0 = no limit [0]."),
]


def _run_options(f):
    for flag, field, kind, text in reversed(RUN_OPTIONS):
        f = click.option(flag, field, type=kind, default=None, help=text)(f)
    return f


@click.command("run")
@_run_options
@click.option("--deterministic/--no-deterministic", default=None,
              help="torch deterministic algorithms (bitwise resume on CPU) [on].")
@click.option("--kto-lambda-desirable", "kto_lambda_desirable", type=float, default=None, help="KTO weight [1].")
@click.option("--kto-lambda-undesirable", "kto_lambda_undesirable", type=float, default=None, help="KTO weight [1].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML or YAML file with any of these options (flags override it).")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Run folder (required unless --resume).")
@click.option("--resume", "resume_dir", type=click.Path(exists=True, file_okay=False),
              help="Continue the run in this folder from its newest checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --output.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def run_cmd(config_file, output, resume_dir, overwrite, quiet, **flags) -> None:
    """Fine-tune a diffusion model towards a reward with the DRAGON loop; print a JSON summary.

    \b
    Examples:
      finetune run --reward rewardkit:fad --ref exemplars/ -o runs/fad
      finetune run --reward "rewardkit:clap_score" --rounds 40 --loss kto -o runs/clap
      finetune run --resume runs/fad                 # after an interruption, or with --rounds to extend
    """
    from finetune.loop import RunConfig, load_run_config, run

    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    if resume_dir:
        extra = {k: v for k, v in flags.items() if v is not None}
        rounds = extra.pop("rounds", None)
        if extra or config_file or output:
            raise click.UsageError("--resume takes only --rounds (and --threads): the run's config.json holds "
                                   f"the rest; got {', '.join(sorted(extra)) or '--config/--output'}")
        summary = run(run_dir=resume_dir, resume=True, rounds=rounds, log=log, progress=not quiet)
    else:
        if not output:
            raise click.UsageError("-o/--output RUN_DIR is required (or --resume RUN_DIR)")
        options = load_run_config(config_file) if config_file else {}
        options.update({k: v for k, v in flags.items() if v is not None})
        if not options.get("reward"):
            raise click.UsageError("--reward is required (or give reward in --config)")
        config = RunConfig.from_dict(options, config_file or "options")
        summary = run(config, output, overwrite=overwrite, log=log, progress=not quiet,
                      command=invocation("finetune"))
    click.echo(json.dumps(summary, indent=2))


@click.command("eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--rewards", help="Comma-separated reward specs; the run's own reward is always added "
                                "[clap_score, aesthetics, vendi, and fad, per_song_fad when the run has --ref].")
@click.option("--prompts", type=click.Path(exists=True, dir_okay=False),
              help="Held-out prompts file [RUN/heldout_prompts.txt].")
@click.option("--samples-per-prompt", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), help="Sampler steps [the run's --eval-steps].")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds of the generations (the same for both models) and of the bootstrap.")
@click.option("--bootstrap", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples of the prompts.")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False),
              help="Model folder to compare with the base [RUN/final].")
@click.option("--device", help="Torch device [the run's].")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Where eval.json/eval.csv go [RUN/eval].")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--base-cache", type=click.Path(file_okay=False),
              help="Folder caching the base model's clips, shared by every run from one base "
                   "[$FINETUNE_CACHE/base-generations, else the user cache folder].")
@click.option("--no-base-cache", is_flag=True, help="Generate the base model's clips afresh and store nothing.")
@threads_option
def eval_cmd(run_dir, rewards, prompts, samples_per_prompt, steps, seed, bootstrap, checkpoint, device, output,
             fmt, base_cache, no_base_cache) -> None:
    """Win rate of the fine-tuned model over its base per reward, on held-out prompts with the same seeds."""
    from finetune.evaluate import evaluate
    from finetune.generations import GenerationCache

    frame = evaluate(run_dir, rewards=rewards, prompts=prompts, samples_per_prompt=samples_per_prompt, steps=steps,
                     seed=seed, bootstrap=bootstrap, checkpoint=checkpoint, device=device, output=output,
                     cache_base=not no_base_cache, base_cache=GenerationCache(base_cache) if base_cache else None,
                     log=lambda m: click.echo(m, err=True))
    emit_frame(frame.drop(columns=["spec"]) if fmt == "table" else frame, fmt)


@click.command("plot")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="PNG path [RUN/curves.png].")
def plot_cmd(run_dir, output) -> None:
    """Training curves of a run as a PNG; prints its path."""
    from finetune.plot import plot_run

    click.echo(str(plot_run(run_dir, output)))
