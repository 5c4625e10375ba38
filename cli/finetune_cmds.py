"""``finetune pretrain`` and ``finetune sample``: the built-in tiny text-to-music model.

Standalone click commands; ``finetune_main`` adds them to its group
(``main.add_command(pretrain_cmd)``, ``main.add_command(sample_cmd)``), whose
ToolGroup turns library errors into one line on stderr and exit code 1.
Logic lives in :mod:`finetune.pretrain` and :mod:`finetune.sample`.
"""

from __future__ import annotations

import json

import click

from ._common import invocation, parse_key_values


def _set_threads(ctx, param, value: int | None) -> int | None:
    # The command owns its process, so it may set torch's thread count (a library function never does).
    # On a CPU shared with other jobs one thread can be many times faster than several that wait on each other.
    if value is not None:
        import torch

        torch.set_num_threads(value)
    return value


threads_option = click.option("--threads", type=click.IntRange(min=1), callback=_set_threads, expose_value=False,
                              help="Torch CPU threads [default: torch's choice]; 1 is best on a busy shared CPU.")




@click.command("pretrain")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="Corpus folder with metadata.csv (rewardkit synth make DIR).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Checkpoint folder (model.safetensors, config.json, training_state.*).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--minutes", type=click.FloatRange(min=0.01), default=40.0, show_default=True,
              help="Wall-clock budget of the training loop.")
@click.option("--max-steps", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--checkpoint-minutes", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Interval between checkpoints.")
@click.option("--device", default="cpu", show_default=True, help="Torch device (cpu, cuda, cuda:1, ...).")
@click.option("--model-option", "-M", "model_config", multiple=True, callback=parse_key_values,
              metavar="KEY=VALUE", help="TinyDiffusion constructor argument (JSON value), e.g. -M channels=[32,64].")
@click.option("--resume", is_flag=True, help="Continue the run saved in --output (error if there is none).")
@click.option("--overwrite", is_flag=True, help="Start afresh even if --output already holds a checkpoint.")
@threads_option
def pretrain_cmd(data, output, seed, minutes, max_steps, batch_size, lr, checkpoint_minutes, device, model_config,
                 resume, overwrite) -> None:
    """Train the built-in tiny text-to-music diffusion model on a corpus; print the training record."""
    from finetune.pretrain import pretrain

    info = pretrain(data, output, seed=seed, minutes=minutes, max_steps=max_steps, batch_size=batch_size, lr=lr,
                    checkpoint_minutes=checkpoint_minutes, model_config=model_config, device=device, resume=resume,
                    overwrite=overwrite, command=invocation("finetune"), log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(info, indent=2, sort_keys=True))


@click.command("sample")
@click.option("--prompt", "prompt_texts", multiple=True, help="A prompt (repeatable).")
@click.option("--prompts", "prompts_file", type=click.Path(exists=True, dir_okay=False),
              help="Prompts, one per line (a .csv/.tsv uses its caption or prompt column).")
@click.option("-n", "n", type=click.IntRange(min=1), default=4, show_default=True, help="Clips per prompt.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for the wav files and prompts.csv.")
@click.option("--checkpoint", type=click.Path(file_okay=False),
              help="Checkpoint folder [default: the one shipped in finetune/assets/tiny_diffusion].")
@click.option("--steps", type=click.IntRange(min=1), default=40, show_default=True, help="DDIM steps.")
@click.option("--guidance", type=float, default=3.0, show_default=True, help="Classifier-free guidance scale.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the first clip; clip i gets seed + i.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Torch device (cpu, cuda, ...).")
@threads_option
def sample_cmd(prompt_texts, prompts_file, n, output, checkpoint, steps, guidance, seed, batch_size,
               device) -> None:
    """Generate N clips per prompt with the tiny model; print the written files as JSON."""
    from finetune.models.tiny_diffusion import TinyDiffusion
    from finetune.sample import MANIFEST, sample_plan, write_samples

    prompts = list(prompt_texts)
    if prompts_file:
        from rewardkit.reference import read_captions

        prompts += read_captions(prompts_file)
    if not prompts:
        raise click.UsageError("give --prompt TEXT or --prompts FILE")
    model = TinyDiffusion.load(checkpoint, device=device)
    all_prompts, seeds = sample_plan(prompts, n, seed)
    paths = write_samples(model, all_prompts, seeds, output, steps=steps, guidance=guidance, batch_size=batch_size,
                          progress=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"files": [str(p) for p in paths], "manifest": str(paths[0].parent / MANIFEST)},
                          indent=2))
