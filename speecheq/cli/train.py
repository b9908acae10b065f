"""``speecheq train`` and ``speecheq predict``: stage 4 and decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.cli.options import (
    DeviceOption,
    ResumeOption,
    ThreadsOption,
    UnlabeledDirOption,
    set_threads,
)
from speecheq.console import print_table


def _print_config(value: bool) -> None:
    if value:
        from speecheq.annotated_config import annotated_defaults

        typer.echo(annotated_defaults(), nl=False)
        raise typer.Exit()


def train_command(
    config: Annotated[Path, typer.Option(help="The training config (YAML).")],
    train_dir: Annotated[Path, typer.Option(help="Training data directory (after stage 2/3).")],
    valid_dir: Annotated[Path, typer.Option(help="Validation data directory.")],
    exp_dir: Annotated[Path, typer.Option(help="Where checkpoints, model.pt and metrics go.")],
    lang_dir: Annotated[
        Path | None, typer.Option(help="Lang directory with tokens.txt (for the phone task).")
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated tasks to train, e.g. emotion,intensity,phone,gender "
            "(default: those of the config's 'tasks')."
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a config key, e.g. --set optim.lr=5e-4 --set tasks.phone.weight=0.5 "
            "(the value is read as YAML; repeat for several).",
        ),
    ] = None,
    resume: ResumeOption = "auto",
    unlabeled_dir: UnlabeledDirOption = None,
    device: DeviceOption = "auto",
    num_threads: ThreadsOption = None,
    print_config: Annotated[
        bool,
        typer.Option(
            "--print-config",
            is_eager=True,
            callback=_print_config,
            help="Print the default config with every key documented, and exit.",
        ),
    ] = False,
) -> None:
    """Train the multitask SpeechEQ model (stage 4).

    Writes the resolved config to EXP_DIR/config.yaml; every epoch writes EXP_DIR/checkpoint.pt
    and metrics.csv; the epoch with the best
    validation score (emotion UA by default) is kept as EXP_DIR/model.pt, a self-contained
    model file for 'speecheq predict' and 'speecheq infer'. Under torchrun, each process
    trains on its share of the batches (DDP).

    With --unlabeled-dir, each epoch mixes batching.unlabeled_ratio unlabeled utterances per
    training utterance into the batches; they add nothing to the supervised losses.
    """
    from speecheq.config import load_config
    from speecheq.train.state import parse_resume
    from speecheq.train.trainer import train

    set_threads(num_threads)
    train_config = load_config(config, overrides or [])
    if tasks is not None:
        train_config = train_config.with_tasks([name for name in tasks.split(",") if name])
    train(
        train_config,
        train_dir,
        valid_dir,
        exp_dir,
        lang_dir,
        resume=parse_resume(resume),
        device=device,
        unlabeled_dir=unlabeled_dir,
    )


def predict_command(
    model: Annotated[Path, typer.Argument(help="A model file (EXP_DIR/model.pt).")],
    data_dir: Annotated[Path, typer.Argument(help="The data directory to decode (after stage 2).")],
    out_dir: Annotated[Path, typer.Argument(help="The decode directory to write.")],
    device: DeviceOption = "auto",
    num_threads: ThreadsOption = None,
) -> None:
    """Decode a data directory: every task's hypotheses and the references, for 'speecheq score'.

    Writes OUT_DIR/classes, OUT_DIR/hyp/<table> (utt2emo, utt2emo.post, utt2intensity,
    utt2gender, tokens, ...) and OUT_DIR/ref/<table>, then prints a quick score per task.
    """
    from speecheq.predict import predict

    set_threads(num_threads)
    summaries = predict(model, data_dir, out_dir, device=device)
    rows = [
        (
            s.task,
            s.table,
            s.hypotheses,
            s.references,
            " ".join(
                f"{name.removeprefix(s.task + ' ')} {value:.3f}" for name, value in s.scores.items()
            )
            or "-",
        )
        for s in summaries
    ]
    print_table(f"{out_dir}", ["task", "table", "hypotheses", "references", "scores"], rows)
