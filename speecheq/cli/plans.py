"""``speecheq exp folds|cross|curve``: write the plan of an experiment (recipe folds and seeds,
a cross-corpus matrix, a label-fraction learning curve) and its data directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.cli.options import UnlabeledDirOption
from speecheq.console import note, print_table
from speecheq.errors import SpeechEQError

ExpArg = Annotated[Path, typer.Argument(help="The experiment folder (holds plan.json).")]
ConfigOption = Annotated[Path, typer.Option(help="The training config (YAML).")]
LangOption = Annotated[
    Path | None, typer.Option(help="Lang directory with tokens.txt (for the phone task).")
]


def names_of(value: str | None) -> list[str] | None:
    """The names of a comma- or space-separated list (None for none)."""
    return [name for name in value.replace(" ", ",").split(",") if name] if value else None


def _saved(plan: object, exp_dir: Path) -> None:
    from speecheq.experiments.plan import Plan

    assert isinstance(plan, Plan)
    plan.save(exp_dir)
    note(
        f"{exp_dir}: plan of {len(plan.runs)} run(s) and {len(plan.reports)} report(s); run it "
        f"with 'speecheq exp train {exp_dir}', 'decode' and 'score'"
    )


def folds_command(
    folds_dir: Annotated[Path, typer.Argument(help="Folds written by 'speecheq data split'.")],
    exp_dir: ExpArg,
    config: ConfigOption,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated tasks to train (default: the config's).")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Override a config key (repeatable)."),
    ] = None,
    lang_dir: LangOption = None,
    folds: Annotated[
        str | None, typer.Option(help="Only these folds, comma- or space-separated (all).")
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Train every fold with each of these seeds, e.g. 0,1,2 (the config's)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The reports' title (the folder name).")] = None,
    unlabeled_dir: UnlabeledDirOption = None,
) -> None:
    """Plan a recipe's experiment: one run per fold (and seed), scored together."""
    from speecheq.experiments.folds import folds_plan

    try:
        seed_list = [int(seed) for seed in names_of(seeds) or []]
    except ValueError:
        raise SpeechEQError(f"--seeds must be integers, got '{seeds}'") from None
    plan = folds_plan(
        folds_dir,
        exp_dir,
        config,
        name=name,
        tasks=names_of(tasks) or (),
        overrides=overrides or (),
        lang_dir=lang_dir,
        folds=names_of(folds),
        seeds=seed_list,
        unlabeled=unlabeled_dir or (),
    )
    _saved(plan, exp_dir)


def cross_command(
    data_dir: Annotated[
        Path, typer.Argument(help="Combined data directory with utt2corpus and features.")
    ],
    exp_dir: ExpArg,
    config: ConfigOption,
    lang_dir: LangOption = None,
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
    """Plan a cross-corpus experiment (Kim et al. 2017) and write its data directories.

    A test corpus in the training set is tested speaker-independently: its speakers are dealt
    into K folds (by gender, then id), and fold k's model is trained without the fold-k
    speakers of every corpus of the set. Other test corpora are tested whole, by one model
    trained on the whole set. No test speaker is ever in a training or validation set.
    """
    from speecheq.experiments.cross import cross_plan

    plan, written = cross_plan(
        data_dir,
        exp_dir,
        config,
        lang_dir=lang_dir,
        corpora=names_of(corpora),
        train_sets=names_of(train_sets) or [],
        num_folds=num_folds,
        valid_fraction=valid_fraction,
        seed=seed,
        classes=names_of(classes),
        task_sets=[names_of(item) or [] for item in tasks or []],
    )
    rows = [
        [
            path,
            f"{len(parts.train.utts)} ({len(parts.train.speakers)})",
            str(len(parts.valid.utts)),
            ", ".join(sorted(set(parts.test.get("utt2corpus").values()))),
            f"{len(parts.test.utts)} ({len(parts.test.speakers)})",
        ]
        for path, parts in written.items()
    ]
    print_table(
        f"{exp_dir}: classes {', '.join(plan.summary['classes'])}",
        ["experiment", "train utts (spk)", "valid", "test corpora", "test utts (spk)"],
        rows,
    )
    _saved(plan, exp_dir)


def curve_command(
    source: Annotated[Path, typer.Argument(help="The corpus trained on (after stage 2).")],
    exp_dir: ExpArg,
    config: ConfigOption,
    target: Annotated[
        Path | None, typer.Option(help="A corpus tested across (after stage 2, same features).")
    ] = None,
    num_folds: Annotated[
        int | None, typer.Option(help="Source speaker folds (default: one per speaker).")
    ] = None,
    valid_fraction: Annotated[float, typer.Option(help="Valid share of each fold.")] = 0.1,
    fractions: Annotated[
        str, typer.Option(help="Comma-separated shares of the labels kept.")
    ] = "0.1,0.25,0.5,1",
    modes: Annotated[str, typer.Option(help="supervised and/or semi.")] = "supervised,semi",
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated emotion classes (the config's).")
    ] = None,
    unlabeled_ratio: Annotated[
        float, typer.Option(help="Unlabeled utterances per labeled one in a batch.")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the folds and of the label draws.")] = 0,
) -> None:
    """Plan the learning curve of Latif et al. (2020): emotion labels kept for a share of the
    training utterances, supervised against semi-supervised, within and across corpora."""
    from speecheq.experiments.curve import curve_plan

    try:
        shares = [float(value) for value in names_of(fractions) or []]
    except ValueError:
        raise SpeechEQError(f"--fractions must be numbers, got '{fractions}'") from None
    plan = curve_plan(
        source,
        exp_dir,
        config,
        target=target,
        num_folds=num_folds,
        valid_fraction=valid_fraction,
        fractions=shares,
        modes=names_of(modes) or [],
        classes=names_of(classes),
        unlabeled_ratio=unlabeled_ratio,
        seed=seed,
    )
    _saved(plan, exp_dir)
