"""``finetune``: DRAGON fine-tuning of text-to-music diffusion models with rewardkit rewards."""

from __future__ import annotations

import click

from rewardkit import __version__

from ._common import CONTEXT, ToolGroup, debug_option
from .finetune_cmds import pretrain_cmd, sample_cmd
from .finetune_run_cmds import eval_cmd, plot_cmd, run_cmd


@click.group("finetune", cls=ToolGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="finetune")
@debug_option
def main(debug: bool) -> None:
    """Fine-tune a text-to-music diffusion model towards a rewardkit reward (DRAGON).

    \b
    run       the DRAGON loop: generate, score, split, DPO/KTO step; checkpoints, --resume
    eval      win rates of a fine-tuned model over its base, per reward, on held-out prompts
    plot      training curves of a run
    pretrain  train the built-in tiny text-to-music model on a corpus
    sample    write wav files from a model
    """


main.add_command(pretrain_cmd)
main.add_command(sample_cmd)
main.add_command(run_cmd)
main.add_command(eval_cmd)
main.add_command(plot_cmd)


if __name__ == "__main__":
    main()
