"""``rewardkit``: metrics and rewards for generated audio."""

from __future__ import annotations

import click

from rewardkit import __version__

from ._common import CONTEXT, FORMATS, ToolGroup, debug_option, emit_frame


@click.group(cls=ToolGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="rewardkit")
@debug_option
def main(debug: bool) -> None:
    """Frechet audio distance (dataset and per song), kernel distance, Vendi
    diversity and similarity scores on embeddings."""


@main.command()
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic embeddings.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
def demo(seed: int, fmt: str) -> None:
    """Score four synthetic embedding sets against one reference and print every metric.

    The sets are a fresh draw of the reference distribution (same), a shifted
    copy, a mode-collapsed one and a noisier one; see rewardkit.demo.
    """
    from rewardkit.demo import metrics_demo

    emit_frame(metrics_demo(seed=seed), fmt)


if __name__ == "__main__":
    main()
