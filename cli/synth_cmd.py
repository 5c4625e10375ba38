"""``synth``: make corpora of the synthetic music world (register with ``main.add_command(synth)``).

The clips are procedurally synthesised for demos, tests and benchmarks; they
are not real music.
"""

from __future__ import annotations

import click

from ._common import CONTEXT, FORMATS, ToolGroup, debug_option, emit_frame


@click.group("synth", cls=ToolGroup, context_settings=CONTEXT)
@debug_option
def synth(debug: bool) -> None:
    """Synthetic captioned music clips (2-4 s, 16 kHz mono) for demos, tests and benchmarks.

    Every clip is rendered from a seeded attribute record (key, mode, tempo,
    instruments, drums, dynamics, brightness, effects) and captioned from
    templates; nothing here is real music.
    """


@synth.command("make")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--n", "n", type=click.IntRange(min=1), default=500, show_default=True, help="Number of clips.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Corpus seed.")
@click.option("--degrade-fraction", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of clips given 1-2 random degradations; adds ratings.csv (all clips rated).")
@click.option("--captions-per-clip", type=click.IntRange(min=1), default=1, show_default=True,
              help="Wordings per clip: extra columns caption_1 ... beside caption.")
@click.option("--subtype", type=click.Choice(["PCM_16", "FLOAT"]), default="PCM_16", show_default=True,
              help="WAV sample format.")
@click.option("--overwrite", is_flag=True, help="Allow a non-empty DIRECTORY (an earlier corpus there is replaced).")
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress bar on stderr.")
def make_cmd(directory, n, seed, degrade_fraction, captions_per_clip, subtype, overwrite, progress) -> None:
    """Write DIRECTORY/clip_00000.wav ... and metadata.csv (file, caption, attributes)."""
    from rewardkit.synth import make_corpus

    frame = make_corpus(directory, n, seed, degrade_fraction, overwrite=overwrite, subtype=subtype,
                        captions_per_clip=captions_per_clip, progress=progress)
    extra = ""
    if "degradations" in frame.columns:
        extra = f", {int((frame['degradations'] != '').sum())} degraded, ratings.csv"
    click.echo(f"wrote {directory}: {len(frame)} clips, metadata.csv{extra}", err=True)


@synth.command("captions")
@click.option("--n", "n", type=click.IntRange(min=1), default=10, show_default=True, help="Number of captions.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Corpus seed.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
def captions_cmd(n, seed, fmt) -> None:
    """Print the captions and attributes of the first N clips of a corpus seed, without rendering audio."""
    import pandas as pd

    from rewardkit.synth import sample_captions

    rows = [{"caption": caption, **attributes.to_dict()} for caption, attributes in sample_captions(n, seed)]
    frame = pd.DataFrame(rows)
    frame.index.name = "clip"
    emit_frame(frame, fmt)
