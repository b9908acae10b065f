"""``speecheq exp ...``: plan experiments (folds, cross-corpus, learning curve), then train,
decode and score any plan, here or on a Slurm cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from speecheq.cli.options import (
    CpusOption,
    DeviceOption,
    GpusOption,
    JobsOption,
    LauncherOption,
    MemOption,
    NodesOption,
    PartitionOption,
    ThreadsOption,
    TimeOption,
    slurm_options,
)
from speecheq.console import note, print_table
from speecheq.errors import SpeechEQError

if TYPE_CHECKING:
    from speecheq.cluster import SlurmOptions
    from speecheq.experiments.launch import Launcher

app = typer.Typer(
    help="Experiments as plans of runs: write a plan (folds, cross, curve), then train, decode "
    "and score it; 'train' and 'decode' take the launcher options of a recipe's cmd.sh.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
)

ExpArg = Annotated[Path, typer.Argument(help="The experiment folder (holds plan.json).")]
ConfigOption = Annotated[Path, typer.Option(help="The training config (YAML).")]
LangOption = Annotated[
    Path | None, typer.Option(help="Lang directory with tokens.txt (for the phone task).")
]
RunsOption = Annotated[
    str | None, typer.Option(help="Comma-separated names of the runs to do (default: all).")
]


def _names(value: str | None) -> list[str] | None:
    return [name for name in value.replace(" ", ",").split(",") if name] if value else None


def _saved(plan: object, exp_dir: Path) -> None:
    from speecheq.experiments.plan import Plan

    assert isinstance(plan, Plan)
    plan.save(exp_dir)
    note(
        f"{exp_dir}: plan of {len(plan.runs)} run(s) and {len(plan.reports)} report(s); run it "
        f"with 'speecheq exp train {exp_dir}', 'decode' and 'score'"
    )


@app.command("folds")
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
) -> None:
    """Plan a recipe's experiment: one run per fold (and seed), scored together."""
    from speecheq.experiments.folds import folds_plan

    try:
        seed_list = [int(seed) for seed in _names(seeds) or []]
    except ValueError:
        raise SpeechEQError(f"--seeds must be integers, got '{seeds}'") from None
    plan = folds_plan(
        folds_dir,
        exp_dir,
        config,
        name=name,
        tasks=_names(tasks) or (),
        overrides=overrides or (),
        lang_dir=lang_dir,
        folds=_names(folds),
        seeds=seed_list,
    )
    _saved(plan, exp_dir)


@app.command("cross")
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
    from speecheq.experiments.crosscorpus import cross_plan

    plan, written = cross_plan(
        data_dir,
        exp_dir,
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
    rows = [
        [
            path,
            f"{len(parts.train.utts)} ({len(parts.train.speakers)})",
            str(len(parts.valid.utts)),
            ", ".join(f"{c} {len(t.utts)} ({len(t.speakers)})" for c, t in parts.tests.items()),
        ]
        for path, parts in written.items()
    ]
    print_table(
        f"{exp_dir}: classes {', '.join(plan.summary['classes'])}",
        ["experiment", "train utts (spk)", "valid", "tests: utts (spk)"],
        rows,
    )
    _saved(plan, exp_dir)


@app.command("curve")
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
        shares = [float(value) for value in _names(fractions) or []]
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
        modes=_names(modes) or [],
        classes=_names(classes),
        unlabeled_ratio=unlabeled_ratio,
        seed=seed,
    )
    _saved(plan, exp_dir)


def _launcher(
    exp_dir: Path, jobs: int, num_threads: int | None, slurm: SlurmOptions | None
) -> Launcher:
    """A local launcher, or one on Slurm (``slurm``) with its files in ``exp_dir/log``."""
    from speecheq.cluster import SlurmCluster
    from speecheq.experiments.launch import LocalLauncher, SlurmLauncher

    if slurm is None:
        return LocalLauncher(jobs, num_threads)
    return SlurmLauncher(SlurmCluster(exp_dir / "log" / "submitit", slurm))


def _run_stage(
    exp_dir: Path, stage: str, runs: str | None, device: str, resume: str, launcher: Launcher
) -> None:
    from speecheq.experiments.launch import Job
    from speecheq.experiments.plan import Plan
    from speecheq.train.state import parse_resume

    plan = Plan.load(exp_dir)
    chosen = _names(runs) or plan.names
    for name in chosen:
        plan.run(name)  # raises on an unknown run
    todo = [Job(str(exp_dir), name, stage, device, parse_resume(resume)) for name in chosen]
    results = launcher.launch(todo)
    print_table(
        f"{exp_dir}: {stage}",
        ["run", "done", "seconds"],
        [[r.run, r.done, f"{r.seconds:.0f}"] for r in results],
    )


@app.command("train")
def train_command(
    exp_dir: ExpArg,
    runs: RunsOption = None,
    device: DeviceOption = "auto",
    resume: Annotated[
        str,
        typer.Option(
            metavar="auto|true|false",
            help="auto: continue each run from its checkpoint (a finished run does nothing).",
        ),
    ] = "auto",
    launcher: LauncherOption = "local",
    jobs: JobsOption = 1,
    num_threads: ThreadsOption = None,
    partition: PartitionOption = None,
    gpus_per_job: GpusOption = 0,
    cpus_per_job: CpusOption = 4,
    mem_gb: MemOption = None,
    time: TimeOption = 24 * 60,
    nodes: NodesOption = 1,
) -> None:
    """Train every run of the plan (stage 4).

    Locally, --jobs runs train at a time with --num-threads CPU threads each (default: the
    cores divided among the jobs); with several, each writes its log to EXP/<run>/log/. On
    Slurm, each run is a job; with several GPUs per job or --nodes, a run trains as one DDP
    world, a process per GPU, started as torchrun would start it.
    """
    slurm = slurm_options(
        launcher, jobs, num_threads, partition, gpus_per_job, cpus_per_job, mem_gb, time, nodes
    )
    chosen = _launcher(exp_dir, jobs, num_threads, slurm)
    _run_stage(exp_dir, "train", runs, device, resume, chosen)


@app.command("decode")
def decode_command(
    exp_dir: ExpArg,
    runs: RunsOption = None,
    device: DeviceOption = "auto",
    launcher: LauncherOption = "local",
    jobs: JobsOption = 1,
    num_threads: ThreadsOption = None,
    partition: PartitionOption = None,
    gpus_per_job: GpusOption = 0,
    cpus_per_job: CpusOption = 4,
    mem_gb: MemOption = None,
    time: TimeOption = 60,
) -> None:
    """Decode the test sets of every run of the plan (stage 5); a decode directory newer than
    its model and its test data is kept."""
    slurm = slurm_options(
        launcher, jobs, num_threads, partition, gpus_per_job, cpus_per_job, mem_gb, time
    )
    chosen = _launcher(exp_dir, jobs, num_threads, slurm)
    _run_stage(exp_dir, "decode", runs, device, "auto", chosen)


@app.command("score")
def score_command(exp_dir: ExpArg) -> None:
    """Score every report of the plan and write its summary (stage 5).

    Each report (the folds of a system, a cross-corpus cell, a point of the learning curve)
    gets scores.json, scores.md and confusion plots in its folder; a recipe with several seeds
    adds EXP/scores/seeds.md, a cross-corpus plan EXP/results.md (matrices and ablation), a
    learning curve EXP/results.md.
    """
    from speecheq.experiments.runner import score
    from speecheq.scoring.report import print_report

    reports = score(exp_dir)
    if len(reports) == 1:
        print_report(reports[0])


@app.command("fuse")
def fuse_command(
    out_dir: Annotated[Path, typer.Argument(help="Where the fused system goes.")],
    systems: Annotated[
        list[Path],
        typer.Argument(help="Folders of <fold>/decode_test with posteriors (two or more)."),
    ],
    weights: Annotated[
        str | None, typer.Option(help="Comma-separated weight of each system (default: equal).")
    ] = None,
) -> None:
    """Late fusion: score each fold from the weighted mean of the systems' emotion posteriors.

    A system is a seed of a recipe's plan (EXP/seed0), its ensemble (EXP/ensemble) or the
    classic baseline (exp/svm_fbank, whose posteriors are calibrated). Writes OUT/<fold>/
    decode_test and OUT/scores.
    """
    from speecheq.experiments.ensemble import fuse_systems
    from speecheq.scoring.report import print_report, write_report

    shares = None
    if weights is not None:
        try:
            shares = [float(word) for word in weights.split(",")]
        except ValueError:
            raise SpeechEQError(
                f"--weights: numbers separated by commas, got '{weights}'"
            ) from None
    report = fuse_systems(systems, out_dir, shares)
    write_report(report, out_dir / "scores")
    print_report(report)


@app.command("release")
def release_command(
    exp_dir: ExpArg,
    data_dir: Annotated[Path, typer.Argument(help="Every labelled utterance (data/all).")],
    out_dir: Annotated[Path, typer.Argument(help="Where the release model goes.")],
    corpus: Annotated[
        str, typer.Option(help="The corpus (or corpora, comma-separated) of the data.")
    ],
    baseline: Annotated[
        list[Path] | None,
        typer.Option(help="A classic baseline's folder (exp/svm_fbank) for the model card."),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Train the recipe's system on every speaker (stage 6): OUT/model.pt, its ONNX export and
    MODEL_CARD.md with the cross-validated figures of EXP's folds and the baselines'."""
    from speecheq.experiments.release import release

    names = [name for name in corpus.split(",") if name]
    model = release(exp_dir, data_dir, out_dir, names, baseline or [], device=device)
    note(f"{model}: the release model; its card is {out_dir / 'MODEL_CARD.md'}")


@app.command("job", hidden=True)
def job_command(
    exp_dir: ExpArg,
    run: Annotated[str, typer.Argument(help="The run's name.")],
    stage: Annotated[str, typer.Option(help="train or decode.")] = "train",
    device: DeviceOption = "auto",
    resume: Annotated[str, typer.Option(metavar="auto|true|false")] = "auto",
    num_threads: ThreadsOption = None,
) -> None:
    """One job of a plan, as a local launcher starts it."""
    from speecheq.experiments.launch import RESULT_PREFIX
    from speecheq.experiments.runner import STAGES, run_job
    from speecheq.train.state import parse_resume

    if stage not in STAGES:
        raise SpeechEQError(f"--stage must be train or decode, got '{stage}'")
    result = run_job(
        exp_dir, run, stage, device=device, resume=parse_resume(resume), threads=num_threads
    )
    print(f"{RESULT_PREFIX}{result.done} in {result.seconds:.1f} s")
