"""``speecheq exp ...``: plan experiments (folds, cross-corpus, learning curve), then train,
decode and score any plan, here or on a Slurm cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from speecheq.cli import plans
from speecheq.cli.options import (
    CpusOption,
    DeviceOption,
    GpusOption,
    JobsOption,
    LauncherOption,
    MemOption,
    NodesOption,
    PartitionOption,
    ResumeOption,
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

RunsOption = Annotated[
    str | None, typer.Option(help="Comma-separated names of the runs to do (default: all).")
]

app.command("folds")(plans.folds_command)
app.command("cross")(plans.cross_command)
app.command("curve")(plans.curve_command)


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
    chosen = plans.names_of(runs) or plan.names
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
    exp_dir: plans.ExpArg,
    runs: RunsOption = None,
    device: DeviceOption = "auto",
    resume: ResumeOption = "auto",
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
    exp_dir: plans.ExpArg,
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
def score_command(exp_dir: plans.ExpArg) -> None:
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
        str | None,
        typer.Option(
            help="Comma-separated weight of each system (default: chosen per fold on the "
            "other folds, on a grid of step 0.1)."
        ),
    ] = None,
) -> None:
    """Late fusion: score each fold from the weighted sum of the systems' per-speaker
    normalised log posteriors.

    A system is a seed of a recipe's plan (EXP/seed0), its ensemble (EXP/ensemble) or the
    classic baseline (exp/svm_egemaps). Writes OUT/<fold>/decode_test, OUT/weights (each
    fold's weights) and OUT/scores.
    """
    from speecheq.data.ops import check_output
    from speecheq.experiments.fusion import fuse_systems
    from speecheq.scoring.report import print_report, write_report

    check_output(out_dir, *systems)

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
    exp_dir: plans.ExpArg,
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
    resume: ResumeOption = "auto",
) -> None:
    """Train the recipe's system on every speaker (stage 6): OUT/model.pt, its ONNX export and
    MODEL_CARD.md with the cross-validated figures of EXP's folds and the baselines'."""
    from speecheq.experiments.release import release
    from speecheq.train.state import parse_resume

    names = [name for name in corpus.split(",") if name]
    model = release(
        exp_dir,
        data_dir,
        out_dir,
        names,
        baseline or [],
        device=device,
        resume=parse_resume(resume),
    )
    note(f"{model}: the release model; its card is {out_dir / 'MODEL_CARD.md'}")


@app.command("job", hidden=True)
def job_command(
    exp_dir: plans.ExpArg,
    run: Annotated[str, typer.Argument(help="The run's name.")],
    stage: Annotated[str, typer.Option(help="train or decode.")] = "train",
    device: DeviceOption = "auto",
    resume: ResumeOption = "auto",
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
