"""``speecheq cross ...``: plan, run and score cross-corpus experiments (Kim et al. 2017)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.console import note, print_table

app = typer.Typer(
    help="Cross-corpus experiments: train on each corpus alone, all pooled and all but one, "
    "test within each corpus (speaker-independent folds) and across corpora; a matrix of "
    "training sets by test corpora for each task set, and the auxiliary-task ablation.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
)

OutArg = Annotated[Path, typer.Argument(help="The experiment folder (e.g. exp/cross).")]


def _names(value: str | None) -> list[str] | None:
    return [name for name in value.split(",") if name] if value else None


@app.command("plan")
def plan_command(
    data_dir: Annotated[
        Path, typer.Argument(help="Combined data directory with utt2corpus and features.")
    ],
    out_dir: OutArg,
    config: Annotated[Path, typer.Option(help="The training config (YAML).")],
    lang_dir: Annotated[
        Path | None, typer.Option(help="Lang directory with tokens.txt (for the phone task).")
    ] = None,
    corpora: Annotated[
        str | None, typer.Option(help="Comma-separated corpora to use (default: all).")
    ] = None,
    train_sets: Annotated[
        str,
        typer.Option(
            help="Comma-separated training sets: alone (each corpus), pooled (all), loo (all "
            "but one), or corpora joined by '+' (casia+emodb)."
        ),
    ] = "alone,pooled,loo",
    num_folds: Annotated[
        int, typer.Option(help="K: speaker folds of a test corpus that is in the training set.")
    ] = 2,
    valid_fraction: Annotated[
        float, typer.Option(help="Share of the training speakers' utterances held out for valid.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the valid draw.")] = 0,
    classes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated emotion classes (default: those every corpus has, after the "
            "config's labels.merge)."
        ),
    ] = None,
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            help="A task set, e.g. emotion,gender; repeat for several (default: the config's)."
        ),
    ] = None,
) -> None:
    """Plan the experiments: write their data directories, the config and plan.json; print them.

    A test corpus in the training set is tested speaker-independently: its speakers are dealt
    into K folds (by gender, then id), and fold k's model is trained without the fold-k
    speakers of every corpus of the set. Other test corpora are tested whole, by one model
    trained on the whole set. No test speaker is ever in a training or validation set.
    """
    from speecheq.crosscorpus.run import create, task_set_tag

    plan, written = create(
        data_dir,
        out_dir,
        config,
        lang_dir=lang_dir,
        corpora=_names(corpora),
        train_sets=_names(train_sets) or [],
        num_folds=num_folds,
        valid_fraction=valid_fraction,
        seed=seed,
        classes=_names(classes),
        task_sets=[_names(item) or [] for item in tasks or []],
    )
    rows = []
    for experiment in plan.experiments:
        parts = written[experiment.path]
        rows.append(
            [
                plan.train_set(experiment.train_set).label,
                experiment.fold,
                f"{len(parts.train.utts)} ({len(parts.train.speakers)})",
                str(len(parts.valid.utts)),
                ", ".join(f"{c} {len(t.utts)} ({len(t.speakers)})" for c, t in parts.tests.items()),
            ]
        )
    print_table(
        f"{out_dir}: {len(plan.experiments)} trainings per task set; classes "
        f"{', '.join(plan.classes)}",
        ["training set", "fold", "train utts (spk)", "valid", "tests: utts (spk)"],
        rows,
    )
    trainings = len(plan.task_sets) * len(plan.experiments)
    sets = ", ".join(task_set_tag(t) for t in plan.task_sets)
    note(
        f"{len(plan.task_sets)} task set(s) ({sets}) x {len(plan.experiments)} = {trainings} "
        f"trainings; run them with 'speecheq cross run {out_dir}'"
    )


@app.command("run")
def run_command(
    out_dir: OutArg,
    device: Annotated[
        str, typer.Option(help="auto (CUDA when present, else CPU), cpu or cuda.")
    ] = "auto",
    task_sets: Annotated[
        str | None,
        typer.Option(help="Comma-separated task-set tags to run, e.g. emotion-gender (all)."),
    ] = None,
) -> None:
    """Train and decode every experiment of the plan, for each task set.

    Re-running does only what is missing or out of date: finished models newer than their data
    and trained with the same config are kept, unfinished ones are resumed.
    """
    from speecheq.crosscorpus.run import run

    records = run(out_dir, device=device, task_sets=_names(task_sets))
    print_table(
        f"{out_dir}: {len(records)} experiment(s)",
        ["task set", "experiment", "training", "decoded", "seconds"],
        [[r.task_set, r.experiment, r.training, r.decoded, f"{r.seconds:.0f}"] for r in records],
    )


@app.command("score")
def score_command(out_dir: OutArg) -> None:
    """Score every cell and print the matrices and the ablation.

    Writes a full report per cell (TASK_SET/scores/TRAIN_SET/CORPUS/scores.json, scores.md,
    confusion plots) and OUT_DIR/results.json and results.md with every matrix (rows: training
    sets, columns: test corpora; category UA / WA in %) and the auxiliary-task ablation.
    """
    from speecheq.crosscorpus.matrix import print_results, score
    from speecheq.crosscorpus.plan import Plan

    matrices = score(out_dir)
    print_results(Plan.load(out_dir), matrices)
    note(f"wrote {out_dir / 'results.md'} and {out_dir / 'results.json'}")
