"""``finetune``: DRAGON fine-tuning of text-to-music diffusion models with rewardkit rewards."""

from __future__ import annotations

import click

from rewardkit import __version__

from ._common import CONTEXT, ToolGroup, debug_option


@click.group("finetune", cls=ToolGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="finetune")
@debug_option
def main(debug: bool) -> None:
    """Fine-tune a diffusion model towards a rewardkit reward (DRAGON).

    The training commands (pretrain, sample, run, eval, plot) are not built
    yet; this entry point exists so the command name is reserved and installed.
    """


if __name__ == "__main__":
    main()
