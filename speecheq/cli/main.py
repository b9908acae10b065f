"""The ``speecheq`` Typer application and its entry point."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from speecheq import __version__
from speecheq.cli import (
    baseline,
    data,
    exp,
    feats,
    infer,
    lexicon,
    prepare,
    score,
    stream,
    synth,
    train,
)
from speecheq.console import status_console
from speecheq.errors import SpeechEQError

app = typer.Typer(
    name="speecheq",
    help="Speech emotion recognition toolkit: Kaldi-style recipes and multitask learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"speecheq {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Speech emotion recognition toolkit: Kaldi-style recipes and multitask learning."""


app.add_typer(data.app, name="data")
app.add_typer(exp.app, name="exp")
app.add_typer(baseline.app, name="baseline")
app.command("prepare")(prepare.prepare_command)
app.command("feats")(feats.feats_command)
app.command("lexicon")(lexicon.lexicon_command)
app.command("score")(score.score_command)
app.command("compare")(score.compare_command)
app.command("train")(train.train_command)
app.command("predict")(train.predict_command)
app.command("infer")(infer.infer_command)
app.command("embed")(infer.embed_command)
app.command("export")(infer.export_command)
app.command("ensemble")(infer.ensemble_command)
app.command("stream")(stream.stream_command)
app.command("serve")(stream.serve_command)
app.command("synth")(synth.synth_command)


def main() -> None:
    """Run the CLI. A :class:`SpeechEQError`, or an operating-system error (a read-only or full
    disk, a path under a file), is printed as one line and exits with status 1."""
    try:
        app()
    except SpeechEQError as err:
        fail(str(err))
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        fail(f"{where}{err.strerror or err}")
    except KeyboardInterrupt:
        status_console.print("[red]interrupted[/]")
        sys.exit(130)


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit with status 1."""
    status_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(1)
