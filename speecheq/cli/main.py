"""The ``speecheq`` Typer application and its entry point."""

from __future__ import annotations

import sys

import typer

from speecheq.cli import data, exp, feats, lexicon, prepare, score, synth, train
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
app.add_typer(data.app, name="data")
app.add_typer(exp.app, name="exp")
app.command("prepare")(prepare.prepare_command)
app.command("feats")(feats.feats_command)
app.command("lexicon")(lexicon.lexicon_command)
app.command("score")(score.score_command)
app.command("train")(train.train_command)
app.command("predict")(train.predict_command)
app.command("infer")(train.infer_command)
app.command("synth")(synth.synth_command)


def main() -> None:
    """Run the CLI; a :class:`SpeechEQError` is printed as one line and exits with status 1."""
    try:
        app()
    except SpeechEQError as err:
        status_console.print(f"[red]error:[/] {err}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        status_console.print("[red]interrupted[/]")
        sys.exit(130)
