"""Jobs on a Slurm cluster through submitit (Kaldi's ``slurm.pl``), for any stage.

:class:`SlurmCluster` submits named calls as one job array, each job with the resources asked
for, waits for all of them, and returns each call's result or why it failed (with its log).
``cluster="local"`` runs the same jobs through submitit's local executor: how the toolkit is
tested without a cluster.

A job asked to spread (one training run) starts ``nodes x`` :attr:`SlurmOptions.processes`
processes, one per GPU, with the environment ``torchrun`` would give them (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), so that they train as one
DDP world; its result is rank 0's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from speecheq.console import note
from speecheq.errors import SpeechEQError


@dataclass(frozen=True)
class SlurmOptions:
    """What each job asks Slurm for."""

    jobs: int = 8
    """Jobs running at a time (the job array's parallelism)."""
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int = 4
    mem_gb: int | None = None
    time_minutes: int = 24 * 60
    threads: int | None = None
    """CPU threads of each job's process (default: its cores)."""
    cluster: str = "slurm"
    """``slurm``, or ``local``: submitit's local executor, on this machine."""
    nodes: int = 1
    """Nodes of a job that spreads (a training run)."""
    tasks_per_node: int | None = None
    """Processes per node of a job that spreads (default: one per GPU, or one)."""

    @property
    def job_threads(self) -> int:
        return self.threads or self.cpus_per_job

    @property
    def processes(self) -> int:
        """Processes per node of a job that spreads."""
        return self.tasks_per_node or max(1, self.gpus_per_job)


class SlurmCluster:
    """Submits calls as Slurm jobs, their files (logs, pickles) under ``folder``."""

    def __init__(self, folder: str | Path, options: SlurmOptions) -> None:
        try:
            import submitit
        except ImportError:
            raise SpeechEQError(
                "--launcher slurm needs submitit: pip install 'speecheq[slurm]'"
            ) from None
        try:
            self.executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster)
        except RuntimeError as err:  # submitit's "Could not detect srun"
            raise SpeechEQError(
                f"--launcher slurm: no Slurm cluster here ({err}); run from a login node of one, "
                "or use --launcher local"
            ) from None
        parameters: dict[str, Any] = {
            "timeout_min": int(options.time_minutes),
            "gpus_per_node": options.gpus_per_job,
            "cpus_per_task": options.cpus_per_job,
            "slurm_array_parallelism": options.jobs,
        }
        if options.partition is not None:
            parameters["slurm_partition"] = options.partition
        if options.mem_gb is not None:
            parameters["mem_gb"] = options.mem_gb
        self.executor.update_parameters(**parameters)
        self.options = options

    def run(
        self, calls: Sequence[tuple[str, Callable[[], Any]]], spread: bool = False
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Run each ``(name, call)`` as a job (``spread``: over the nodes and processes of the
        options, as one DDP world); return the results of those that ended well and, for the
        others, the reason (the last exception's message) and the job's log, by name."""
        if not calls:
            return {}, {}
        nodes, processes = (self.options.nodes, self.options.processes) if spread else (1, 1)
        self.executor.update_parameters(nodes=nodes, tasks_per_node=processes)
        if nodes * processes > 1:
            calls = [(name, partial(_as_torchrun_would, call)) for name, call in calls]
        try:
            with self.executor.batch():
                submitted = [(name, self.executor.submit(call)) for name, call in calls]
        except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
            detail = " ".join(str(err).split())[:300]
            raise SpeechEQError(f"Slurm refused the {len(calls)} job(s): {detail}") from None
        for name, handle in submitted:
            note(f"{name}: submitted as job {handle.job_id}")
        results: dict[str, Any] = {}
        failures: dict[str, str] = {}
        for name, handle in submitted:
            error = handle.exception()
            if error is None:
                results[name] = handle.results()[0]
            else:
                why = _exception_line(str(error)) or type(error).__name__
                failures[name] = f"{why} (log: {handle.paths.stderr})"
        return results, failures

    def run_parts(
        self, calls: Sequence[tuple[str, Callable[[], Any]]], total: int, what: str
    ) -> None:
        """Run the jobs of a resumable stage, whose outputs stay when they end well; raise naming
        every one that failed (of ``total`` jobs of ``what``)."""
        _, failures = self.run(calls)
        if failures:
            named = "; ".join(f"{name}: {why}" for name, why in failures.items())
            raise SpeechEQError(
                f"{len(failures)} of {total} {what} job(s) failed: {named}; the same command "
                "again redoes only those"
            )


def _as_torchrun_would(call: Callable[[], Any]) -> Any:
    """In one process of a spread job: set torchrun's environment, then ``call()``."""
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return call()


def _exception_line(text: str) -> str | None:
    """The message of the last exception named in a remote traceback (``...Error: message``)."""
    for line in reversed(text.splitlines()):
        name, sep, message = line.strip().partition(": ")
        if sep and name.split(".")[-1].endswith(("Error", "Exception")) and " " not in name:
            return message
    return None
