"""``rewardkit``: metrics and rewards for generated audio."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import click

from rewardkit import __version__

from ._common import CONTEXT, FORMATS, ToolGroup, debug_option, emit_frame, invocation, parse_key_values
from .synth_cmd import synth


@click.group("rewardkit", cls=ToolGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="rewardkit")
@debug_option
def main(debug: bool) -> None:
    """Frechet audio distance (dataset and per song), kernel distance, Vendi
    diversity and CLAP scores of generated audio, on cached embeddings.

    Exit codes: 0 success (files that failed are reported and skipped), 1
    nothing could be done (or --strict and a file failed), 2 usage error.
    """


# ---------------------------------------------------------------- shared options
@dataclass(frozen=True)
class EncoderChoice:
    name: str
    options: dict[str, Any]
    cache_dir: str | None
    use_cache: bool
    allow_silence: bool = False

    @property
    def loading(self):
        from rewardkit.audio import LoadOptions

        return LoadOptions(allow_silence=self.allow_silence)

    def build(self):
        from rewardkit import encoders

        return encoders.get(self.name, **self.options)

    def cache(self):
        from rewardkit.cache import EmbeddingCache

        return EmbeddingCache(self.cache_dir) if self.use_cache else None




def encoder_options(f):
    """--encoder, --clap-ckpt, --device, --batch-size, -O key=value, --cache-dir, --no-cache."""
    opts = [
        click.option("--encoder", "-e", "encoder_name", default="clap", show_default=True,
                     help="Encoder name (see `rewardkit encoders`)."),
        click.option("--clap-ckpt", type=click.Path(dir_okay=False), envvar="REWARDKIT_CLAP_CKPT",
                     help="LAION-CLAP checkpoint for --encoder clap [env: REWARDKIT_CLAP_CKPT]."),
        click.option("--device", help="Torch device for the encoder (default: cuda if available, else cpu)."),
        click.option("--batch-size", type=click.IntRange(min=1), help="Windows per forward pass."),
        click.option("--encoder-option", "-O", "extra", multiple=True, callback=parse_key_values,
                     metavar="KEY=VALUE", help="Any other encoder option (JSON values), repeatable."),
        click.option("--cache-dir", type=click.Path(file_okay=False), envvar="REWARDKIT_CACHE",
                     help="Embedding cache folder [env: REWARDKIT_CACHE; default: the user cache folder]."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the embedding cache."),
        click.option("--allow-silence", is_flag=True,
                     help="Accept all-zero files (by default they are reported as errors and skipped)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _choice(encoder_name, clap_ckpt, device, batch_size, extra, cache_dir, no_cache,
            allow_silence) -> EncoderChoice:
    options = dict(extra)
    if clap_ckpt and encoder_name == "clap":
        options.setdefault("ckpt", clap_ckpt)
    if device:
        options["device"] = device
    if batch_size:
        options["batch_size"] = batch_size
    return EncoderChoice(encoder_name, options, cache_dir, not no_cache, allow_silence)


def _report_errors(errors, strict: bool) -> None:
    for e in errors:
        click.echo(f"rewardkit: skipped {e.error}", err=True)
    if strict and errors:
        click.echo(f"rewardkit: error: {len(errors)} file(s) failed and --strict is set", err=True)
        sys.exit(1)


# ---------------------------------------------------------------- commands
@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@encoder_options
@click.option("--strict", is_flag=True, help="Exit 1 if any file fails.")
def embed(directory, strict, **kw) -> None:
    """Embed every audio file under DIRECTORY into the cache (progress on stderr)."""
    from rewardkit.embedding import embed_directory

    choice = _choice(**kw)
    result = embed_directory(directory, choice.build(), cache=choice.cache(), options=choice.loading,
                             progress=True)
    hits = sum(f.cached for f in result.files)
    click.echo(f"embedded {len(result.files)} file(s) ({hits} from the cache), "
               f"{len(result.errors)} failed", err=True)
    _report_errors(result.errors, strict)
    if not result.files:
        click.echo(f"rewardkit: error: {directory}: no file could be embedded", err=True)
        sys.exit(1)


@main.group(cls=ToolGroup)
def ref() -> None:
    """Reference statistics."""


@ref.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("--text", "text", type=click.Path(exists=True, dir_okay=False),
              help="Build from captions (one per line, or a CSV caption column) with a cross-modal encoder.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Stats file to write (.npz).")
@encoder_options
@click.option("--strict", is_flag=True, help="Exit 1 if any file fails.")
def ref_build(directory, text, output, strict, **kw) -> None:
    """Write reference stats (frames' mean and covariance, item embeddings, encoder fingerprint)."""
    from rewardkit.reference import read_captions, reference_from_text

    if bool(directory) == bool(text):
        raise click.UsageError("give exactly one of DIRECTORY or --text CAPTIONS")
    choice = _choice(**kw)
    encoder = choice.build()
    if text:
        reference = reference_from_text(read_captions(text), encoder, text)
    else:
        from rewardkit.embedding import embed_directory
        from rewardkit.errors import InputError
        from rewardkit.reference import reference_from_embeddings

        embedded = embed_directory(directory, encoder, cache=choice.cache(), options=choice.loading,
                                   progress=True)
        if not embedded.files and not embedded.errors:
            raise InputError(f"{directory}: contains no audio files")
        _report_errors(embedded.errors, strict)
        reference = reference_from_embeddings(embedded, directory)
    reference.save(output)
    click.echo(f"wrote {output}: {reference.stats.count} {'captions' if text else 'frames'}, "
               f"dim {reference.stats.dim}, encoder {reference.encoder}", err=True)


@main.command("score")
@click.argument("gen_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--ref", "ref_path", required=True, type=click.Path(exists=True),
              help="Reference: an audio directory, a stats file (.npz) or captions (.txt/.csv).")
@click.option("--prompts", type=click.Path(exists=True, dir_okay=False),
              help="CSV manifest with columns file,prompt: adds the CLAP score (matched by file name).")
@click.option("--per-song", "per_song", type=click.Path(dir_okay=False), help="Write one CSV row per file here.")
@click.option("--aesthetics", "aesthetics", type=click.Path(dir_okay=False),
              help="Aesthetics head for this encoder (default: the one shipped for it, if any).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@encoder_options
@click.option("--strict", is_flag=True, help="Exit 1 if any file fails.")
def score_cmd(gen_dir, ref_path, prompts, per_song, aesthetics, fmt, strict, **kw) -> None:
    """Score the generated audio in GEN_DIR against a reference with every metric."""
    import pandas as pd

    from rewardkit._fileio import atomic_write
    from rewardkit.scoring import score

    choice = _choice(**kw)
    report = score(gen_dir, ref_path, encoder=choice.name, encoder_options=choice.options, prompts=prompts,
                   cache_dir=choice.cache_dir, use_cache=choice.use_cache, options=choice.loading,
                   aesthetics=aesthetics, progress=True)
    if per_song:
        with atomic_write(per_song) as f:
            f.write(report.per_song.to_csv(index=False).encode())
    if fmt == "json":
        click.echo(report.to_json())
    elif fmt == "csv":
        emit_frame(pd.DataFrame([report.metrics]), "csv")
    else:
        frame = pd.DataFrame({"value": pd.Series(report.metrics)})
        frame.index.name = "metric"
        emit_frame(frame, "table")
    for note in report.notes:
        click.echo(f"rewardkit: note: {note}", err=True)
    _report_errors(report.errors, strict)


def _statistics_option(ctx, param, value: str) -> tuple[str, ...]:
    from rewardkit.aesthetics import check_statistics
    from rewardkit.errors import InputError

    try:
        return check_statistics(value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


@main.group("aesthetics", cls=ToolGroup)
def aesthetics_group() -> None:
    """Aesthetics heads: predicted 1-5 ratings from clip embeddings."""


@aesthetics_group.command("train")
@click.argument("ratings", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Head to write (NAME.safetensors, with NAME.json beside it).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and the initialisation.")
@click.option("--epochs", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--features", default="mean", show_default=True, callback=_statistics_option,
              help="Statistics over each file's frames the head reads, comma-separated: mean, std, max, min, "
                   "delta, delta2 (mean |first|, |second| difference of consecutive frames).")
@click.option("--hidden", type=click.IntRange(min=1), default=128, show_default=True, help="Hidden width.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-2, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True)
@encoder_options
def aesthetics_train(ratings, output, seed, epochs, features, hidden, dropout, weight_decay, lr, **kw) -> None:
    """Train a head on RATINGS (CSV file,rating; files relative to it); print held-out PLCC and SRCC."""
    from rewardkit.training.aesthetics import train_head

    choice = _choice(**kw)
    record = train_head(ratings, choice.build(), output, seed=seed, epochs=epochs, features=features,
                        hidden=hidden, dropout=dropout, weight_decay=weight_decay, lr=lr,
                        cache=choice.cache(), command=invocation("rewardkit"))
    click.echo(json.dumps({k: record[k] for k in ("clips", "heldout", "heldout_plcc", "heldout_srcc",
                                                  "heldout_mae")}, indent=2))


@main.command("train-encoder")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="Training corpus (rewardkit synth make DIR).")
@click.option("--heldout", type=click.Path(exists=True, file_okay=False),
              help="Held-out corpus (another seed) for recall@1 among 100.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for model.safetensors and config.json.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--minutes", type=click.FloatRange(min=0.05), default=15.0, show_default=True,
              help="Wall-clock budget of the optimisation loop.")
@click.option("--max-steps", type=click.IntRange(min=1), default=4000, show_default=True)
def train_encoder(data, heldout, output, seed, minutes, max_steps) -> None:
    """Train the synthclap audio-text encoder contrastively on a synthetic corpus."""
    from rewardkit.training.contrastive import TrainConfig, train_synthclap

    record = train_synthclap(data, output, config=TrainConfig(seed=seed, minutes=minutes, max_steps=max_steps),
                             heldout_dir=heldout, command=invocation("rewardkit"),
                             log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({k: record.get(k) for k in ("steps", "final_loss", "train_seconds", "heldout")},
                          indent=2))


@main.group(cls=ToolGroup)
def cache() -> None:
    """The embedding cache."""


def _cache_dir_option(f):
    return click.option("--cache-dir", type=click.Path(file_okay=False), envvar="REWARDKIT_CACHE",
                        help="Cache folder [env: REWARDKIT_CACHE; default: the user cache folder].")(f)


@cache.command("info")
@_cache_dir_option
def cache_info(cache_dir) -> None:
    """Where the cache is, and how many entries per encoder it holds."""
    from rewardkit.cache import EmbeddingCache

    s = EmbeddingCache(cache_dir).stats()
    click.echo(f"location: {s.root}\nentries: {s.entries}\nsize: {s.bytes / 2**20:.1f} MiB")
    for name, n in s.by_encoder.items():
        click.echo(f"  {name}: {n}")


@cache.command("clear")
@_cache_dir_option
@click.option("--encoder", "encoder_name", help="Only this encoder's entries.")
def cache_clear(cache_dir, encoder_name) -> None:
    """Delete cached embeddings."""
    from rewardkit.cache import EmbeddingCache

    c = EmbeddingCache(cache_dir)
    click.echo(f"removed {c.clear(encoder_name)} entries from {c.root}")


@main.command("encoders")
def list_encoders() -> None:
    """List the registered encoders (none is built)."""
    from rewardkit import encoders

    for name in encoders.names():
        click.echo(name)


@main.command()
@click.option("-o", "--output", default="rewardkit-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the synthesized audio, the cache and demo.png.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything synthesized.")
@click.option("--n", "n", type=click.IntRange(min=4), default=24, show_default=True, help="Clips per candidate set.")
@click.option("--embeddings", is_flag=True,
              help="Instead: the metric core on four synthetic embedding sets (no audio, no model).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
def demo(output: str, seed: int, n: int, embeddings: bool, fmt: str) -> None:
    """Synthesize music clips, score clean, degraded and off-prompt sets with every metric, plot them.

    Offline, in a synthetic world made by rewardkit.synth and scored with the
    project-trained synthclap encoder and log-mel frames. With --embeddings:
    four synthetic embedding sets (same distribution, shifted, mode-collapsed,
    noisier) scored by the metric core alone.
    """
    from rewardkit.demo import audio_demo, metrics_demo

    if embeddings:
        emit_frame(metrics_demo(seed=seed), fmt)
        return
    table, png = audio_demo(output, seed=seed, n=n, progress=True)
    emit_frame(table, fmt)
    click.echo(f"rewardkit: wrote the plot to {png}", err=True)


main.add_command(synth)


if __name__ == "__main__":
    main()

