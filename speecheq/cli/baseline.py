"""``speecheq baseline ...``: the classic baseline (utterance functionals + a linear SVM)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.cli.options import (
    CpusOption,
    GpusOption,
    LauncherOption,
    MemOption,
    PartitionOption,
    TimeOption,
    slurm_options,
)
from speecheq.console import note
from speecheq.data.ops import check_output
from speecheq.scoring.report import print_report, write_report

app = typer.Typer(
    help="The classic baseline: utterance functionals, standardised per speaker, and a linear "
    "SVM (scikit-learn), scored like every system.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
)


@app.command("functionals")
def functionals_command(
    data_dir: Annotated[Path, typer.Argument(help="The data directory (needs wav.scp).")],
    out_dir: Annotated[
        Path, typer.Argument(help="Where to write functionals.ark/.scp, names.txt and conf.")
    ],
    kind: Annotated[
        str,
        typer.Option(
            "--set",
            help="fbank (statistics of our filterbank + pitch frames), egemaps (openSMILE "
            "eGeMAPSv02) or compare (openSMILE ComParE_2016); the openSMILE sets need "
            "speecheq[opensmile], whose licence is for research and non-commercial use.",
        ),
    ] = "fbank",
    nj: Annotated[int, typer.Option(min=1, help="Parallel processes, or jobs on Slurm.")] = 1,
    launcher: LauncherOption = "local",
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs run at a time (default: all --nj locally, 8 on Slurm)."),
    ] = None,
    num_threads: Annotated[
        int, typer.Option(min=1, help="CPU threads of each process or job.")
    ] = 1,
    partition: PartitionOption = None,
    gpus_per_job: GpusOption = 0,
    cpus_per_job: CpusOption = 1,
    mem_gb: MemOption = None,
    time: TimeOption = 4 * 60,
) -> None:
    """Compute one vector of functionals per utterance (reused when already computed).

    --launcher slurm (the options of a recipe's cmd.sh) computes --nj blocks of utterances as
    Slurm jobs through submitit, with the same result; a failed job is named, and the same
    command redoes it alone."""
    from speecheq.baseline.functionals import make_functionals
    from speecheq.cluster import SlurmCluster

    check_output(out_dir, data_dir)
    slurm = slurm_options(
        launcher, jobs, num_threads, partition, gpus_per_job, cpus_per_job, mem_gb, time
    )
    if slurm is None:
        computed = make_functionals(data_dir, out_dir, kind, min(jobs or nj, nj), num_threads)
    else:
        cluster = SlurmCluster(out_dir / "log" / "submitit", slurm)
        computed = make_functionals(data_dir, out_dir, kind, nj, num_threads, cluster)
    if computed:
        note(f"{out_dir}: {kind} functionals of {computed} utterances")


@app.command("svm")
def svm_command(
    folds_dir: Annotated[Path, typer.Argument(help="Folds written by 'speecheq data split'.")],
    exp_dir: Annotated[Path, typer.Argument(help="Where each fold's decode directory goes.")],
    functionals: Annotated[
        list[Path],
        typer.Option(
            help="A folder 'speecheq baseline functionals' wrote; repeat it to let each fold "
            "keep the set of best inner UA."
        ),
    ],
    config: Annotated[
        Path, typer.Option(help="A training config: its labels.classes and labels.merge.")
    ],
    folds: Annotated[
        str | None, typer.Option(help="Space- or comma-separated folds (default: all).")
    ] = None,
    nj: Annotated[
        int, typer.Option(min=1, help="Folds fitted at a time, each in its own process.")
    ] = 1,
) -> None:
    """Train a linear SVM per fold (C, and the set of functionals when given several, chosen by
    an inner leave-one-speaker-out), decode its test set, and write the report to
    EXP_DIR/scores."""
    from speecheq.baseline.svm import run_svm

    check_output(exp_dir, folds_dir, *functionals)
    chosen = folds.replace(",", " ").split() if folds else None
    report = run_svm(folds_dir, exp_dir, functionals, config, chosen, nj)
    print_report(report)
    write_report(report, exp_dir / "scores")
