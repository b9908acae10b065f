"""Options that several commands share: the device, CPU threads, unlabeled speech, and the
launcher options of a recipe's ``cmd.sh`` (how the jobs of stages 2, 4 and 5 run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.cluster import SlurmOptions
from speecheq.errors import SpeechEQError

DeviceOption = Annotated[str, typer.Option(help="auto (CUDA when present, else CPU), cpu or cuda.")]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="CPU threads of this process (default: PyTorch's, one per core).",
        show_default=False,
    ),
]
LauncherOption = Annotated[
    str,
    typer.Option(
        help="local (this machine), slurm (a Slurm cluster, through submitit) or slurm-local "
        "(the same jobs through submitit's local executor: a cmd.sh tried on this machine)."
    ),
]
UnlabeledDirOption = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="DIR",
        help="A data directory of unlabeled speech (after stage 2; in a recipe, of another "
        "corpus) for the tasks that learn from it (aae); its labels, if any, are not used. "
        "Repeat for several.",
    ),
]
JobsOption = Annotated[int, typer.Option(min=1, help="Jobs run at a time.")]
ResumeOption = Annotated[
    str,
    typer.Option(
        metavar="auto|true|false",
        help="auto: continue from the checkpoint when there is one (a finished run does "
        "nothing), else start afresh; true: continue (a checkpoint must exist); false: start "
        "afresh.",
    ),
]
PartitionOption = Annotated[str | None, typer.Option(help="Slurm: the partition.")]
GpusOption = Annotated[int, typer.Option(min=0, help="Slurm: GPUs per job.")]
CpusOption = Annotated[int, typer.Option(min=1, help="Slurm: CPU cores per job.")]
MemOption = Annotated[int | None, typer.Option(min=1, help="Slurm: memory per job, in GB.")]
TimeOption = Annotated[int, typer.Option(min=1, help="Slurm: time limit per job, in minutes.")]
NodesOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Slurm: nodes per training run; it trains as one DDP world of a process per GPU "
        "(--gpus-per-job) on each node.",
    ),
]


def set_threads(threads: int | None) -> None:
    """Let this process use ``threads`` CPU threads (None: PyTorch's default)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def slurm_options(
    launcher: str,
    jobs: int | None,
    num_threads: int | None,
    partition: str | None,
    gpus_per_job: int,
    cpus_per_job: int,
    mem_gb: int | None,
    time: int,
    nodes: int = 1,
) -> SlurmOptions | None:
    """The Slurm options of ``--launcher slurm`` (or ``slurm-local``; ``jobs`` None: Slurm's
    default parallelism); None for ``local``."""
    if launcher == "local":
        return None
    if launcher in ("slurm", "slurm-local"):
        return SlurmOptions(
            jobs=jobs or SlurmOptions.jobs,
            partition=partition,
            gpus_per_job=gpus_per_job,
            cpus_per_job=cpus_per_job,
            mem_gb=mem_gb,
            time_minutes=time,
            threads=num_threads,
            cluster="local" if launcher == "slurm-local" else "slurm",
            nodes=nodes,
        )
    raise SpeechEQError(f"--launcher must be local, slurm or slurm-local, got '{launcher}'")
