"""``finetune``: DRAGON fine-tuning of text-to-music diffusion models with rewardkit rewards."""

from __future__ import annotations

import click

from rewardkit import __version__

from ._common import CONTEXT, ToolGroup, debug_option
from .finetune_cmds import pretrain_cmd, sample_cmd


@click.group("finetune", cls=ToolGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="finetune")
@debug_option
def main(debug: bool) -> None:
    """Fine-tune a diffusion model towards a rewardkit reward (DRAGON).

    Built so far: the built-in text-to-music diffusion model (pretrain,
    sample). The DRAGON loop (run, eval, plot) is not built yet.
    """


main.add_command(pretrain_cmd)
main.add_command(sample_cmd)


if __name__ == "__main__":
    main()
