"""How the jobs of a plan run (Kaldi's ``cmd.sh``: ``run.pl`` or ``slurm.pl``).

- :class:`LocalLauncher`: on this machine, ``jobs`` at a time, the CPU threads divided among
  them (``threads`` each, by default the cores over the jobs). One job at a time runs in this
  process; several run as ``python -m speecheq exp job ...`` processes, each writing its output
  to ``<exp dir>/log/<stage>.log``.
- :class:`SlurmLauncher`: on a Slurm cluster through submitit, one job per run, with the
  resources asked for; ``cluster="local"`` runs the same jobs through submitit's local executor
  (how it is tested without a cluster). A user who outgrows one GPU per run starts each job's
  training under ``torchrun`` instead (see the README).

A failed job does not stop the others; when all are done, the failures are reported together,
each with its log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from speecheq.console import note, warn
from speecheq.errors import SpeechEQError
from speecheq.experiments.plan import Plan
from speecheq.experiments.runner import JobResult, run_job
from speecheq.fileio import make_folder
from speecheq.train.state import Resume


@dataclass(frozen=True)
class Job:
    """One run's training or decoding, to be launched."""

    plan_dir: str
    run: str
    stage: str
    device: str
    resume: Resume

    def log(self, plan: Plan) -> Path:
        return Path(plan.run(self.run).exp_dir) / "log" / f"{self.stage}.log"

    def execute(self, threads: int | None) -> JobResult:
        """Run it in this process (a local launcher's, or a cluster job's) with ``threads``."""
        return run_job(
            self.plan_dir, self.run, self.stage, device=self.device, resume=self.resume,
            threads=threads,
        )  # fmt: skip


class Launcher(ABC):
    """Runs jobs and returns what each did; raises naming every job that failed."""

    @abstractmethod
    def launch(self, jobs: Sequence[Job]) -> list[JobResult]: ...


def _failed(failures: Sequence[tuple[Job, str]]) -> SpeechEQError:
    lines = "; ".join(f"{job.run} ({job.stage}): {why}" for job, why in failures)
    return SpeechEQError(f"{len(failures)} job(s) failed: {lines}")


class LocalLauncher(Launcher):
    """``jobs`` at a time on this machine, ``threads`` CPU threads each."""

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        if jobs < 1:
            raise SpeechEQError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.threads = threads or max(1, (os.cpu_count() or 1) // jobs)

    def launch(self, jobs: Sequence[Job]) -> list[JobResult]:
        if self.jobs == 1:
            return [self._in_process(job, index, len(jobs)) for index, job in enumerate(jobs)]
        return self._processes(jobs)

    def _in_process(self, job: Job, index: int, total: int) -> JobResult:
        note(f"[{index + 1}/{total}] {job.stage} {job.run}")
        return job.execute(self.threads)

    def _processes(self, jobs: Sequence[Job]) -> list[JobResult]:
        plan = Plan.load(jobs[0].plan_dir) if jobs else None
        pending = list(jobs)
        running: dict[subprocess.Popen, Job] = {}
        results: list[JobResult] = []
        failures: list[tuple[Job, str]] = []
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        while pending or running:
            while pending and len(running) < self.jobs:
                job = pending.pop(0)
                assert plan is not None
                log = job.log(plan)
                make_folder(log.parent, for_path=log)
                note(f"{job.stage} {job.run}: started, log in {log}")
                with log.open("w", encoding="utf-8") as out:
                    process = subprocess.Popen(
                        self._command(job), stdout=out, stderr=subprocess.STDOUT, env=env
                    )
                running[process] = job
            finished = _wait_any(running)
            job = running.pop(finished)
            assert plan is not None
            if finished.returncode == 0:
                results.append(_result_line(job, job.log(plan)))
                note(f"{job.stage} {job.run}: {results[-1].done}")
            else:
                failures.append((job, _last_line(job.log(plan))))
                warn(f"{job.stage} {job.run} failed: {failures[-1][1]}")
        if failures:
            raise _failed(sorted(failures, key=lambda failure: jobs.index(failure[0])))
        return sorted(results, key=lambda result: [job.run for job in jobs].index(result.run))

    def _command(self, job: Job) -> list[str]:
        resume = job.resume if isinstance(job.resume, str) else str(job.resume).lower()
        return [
            *(sys.executable, "-m", "speecheq", "exp", "job", job.plan_dir, job.run),
            *("--stage", job.stage, "--device", job.device, "--resume", resume),
            *("--num-threads", str(self.threads)),
        ]


RESULT_PREFIX = "job done: "
"""What ``speecheq exp job`` prints last, so that a launcher can read the result from its log."""


def _result_line(job: Job, log: Path) -> JobResult:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    found = next((line for line in reversed(lines) if line.startswith(RESULT_PREFIX)), "")
    done, _, seconds = found.removeprefix(RESULT_PREFIX).rpartition(" in ")
    return JobResult(job.run, job.stage, done, float(seconds.removesuffix(" s") or 0))


def _last_line(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
    return f"{last} (log: {log})"


def _wait_any(running: dict[subprocess.Popen, Job]) -> subprocess.Popen:
    """The first of the running processes to end."""
    while True:
        for process in running:
            if process.poll() is not None:
                return process
        time.sleep(0.2)


class SlurmLauncher(Launcher):
    """One submitit job per run on a Slurm cluster (``cluster="local"``: on this machine)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        jobs: int = 8,
        partition: str | None = None,
        gpus_per_job: int = 0,
        cpus_per_job: int = 4,
        mem_gb: int | None = None,
        time_minutes: int = 24 * 60,
        threads: int | None = None,
        cluster: str = "slurm",
    ) -> None:
        try:
            import submitit
        except ImportError:
            raise SpeechEQError(
                "--launcher slurm needs submitit: pip install 'speecheq[slurm]'"
            ) from None
        try:
            self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        except RuntimeError as err:  # submitit's "Could not detect srun"
            raise SpeechEQError(
                f"--launcher slurm: no Slurm cluster here ({err}); run from a login node of one, "
                "or use --launcher local"
            ) from None
        parameters = {
            "timeout_min": int(time_minutes),
            "gpus_per_node": gpus_per_job,
            "cpus_per_task": cpus_per_job,
            "slurm_array_parallelism": jobs,
        }
        if partition is not None:
            parameters["slurm_partition"] = partition
        if mem_gb is not None:
            parameters["mem_gb"] = mem_gb
        self.executor.update_parameters(**parameters)
        self.threads = threads or cpus_per_job

    def launch(self, jobs: Sequence[Job]) -> list[JobResult]:
        try:
            with self.executor.batch():
                submitted = [self.executor.submit(job.execute, self.threads) for job in jobs]
        except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
            detail = " ".join(str(err).split())[:300]
            raise SpeechEQError(f"Slurm refused the {len(jobs)} job(s): {detail}") from None
        for job, handle in zip(jobs, submitted, strict=True):
            note(f"{job.stage} {job.run}: submitted as job {handle.job_id}")
        results: list[JobResult] = []
        failures: list[tuple[Job, str]] = []
        for job, handle in zip(jobs, submitted, strict=True):
            error = handle.exception()
            if error is None:
                results.append(handle.result())
                note(f"{job.stage} {job.run}: {results[-1].done}")
            else:
                why = _exception_line(str(error)) or type(error).__name__
                failures.append((job, f"{why} (log: {handle.paths.stderr})"))
        if failures:
            raise _failed(failures)
        return results


def _exception_line(text: str) -> str | None:
    """The message of the last exception named in a remote traceback (``...Error: message``)."""
    for line in reversed(text.splitlines()):
        name, sep, message = line.strip().partition(": ")
        if sep and name.split(".")[-1].endswith(("Error", "Exception")) and " " not in name:
            return message
    return None
