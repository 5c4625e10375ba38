"""What every command shares: exit codes, one-line errors, output formats.

Exit codes: 0 success; 1 the work failed (a rewardkit error, printed as one
line on stderr); 2 usage error (click's own). ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

import click

from rewardkit.errors import RewardkitError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
FORMATS = click.Choice(["table", "json", "csv"])


class ToolGroup(click.Group):
    """A click group that turns library errors into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RewardkitError as exc:
            if ctx.find_root().params.get("debug") or ctx.params.get("debug"):
                traceback.print_exc()
            click.echo(f"{ctx.find_root().command.name}: error: {exc}", err=True)
            sys.exit(1)


def debug_option(f):
    return click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")(f)


def emit_frame(frame, fmt: str) -> None:
    """Print a pandas DataFrame to stdout as an aligned table, JSON records or CSV.

    JSON is strict: a missing value (NaN, e.g. a set reward's per-prompt interval) is ``null``, not ``NaN``.
    """
    if fmt == "json":
        from rewardkit.scoring import _json_value  # NaN -> None, numpy scalars -> Python

        records = [{k: _json_value(v) for k, v in row.items()} for row in frame.reset_index().to_dict(orient="records")]
        click.echo(json.dumps(records, indent=2, allow_nan=False))
    elif fmt == "csv":
        click.echo(frame.to_csv(), nl=False)
    else:
        click.echo(frame.to_string(float_format=lambda v: f"{v:.4f}"))


def parse_key_values(ctx, param, values: tuple[str, ...]) -> dict[str, Any]:
    """click callback: repeated ``KEY=VALUE`` options as a dict, values parsed as JSON when they are JSON."""
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def invocation(program: str) -> str:
    """The command line as typed (``program`` and its arguments), recorded with trained artifacts."""
    import shlex

    return program + " " + " ".join(shlex.quote(a) for a in sys.argv[1:])
