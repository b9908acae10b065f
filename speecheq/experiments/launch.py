"""How the jobs of a plan run (Kaldi's ``cmd.sh``: ``run.pl`` or ``slurm.pl``).

- :class:`LocalLauncher`: on this machine, ``jobs`` at a time, the CPU threads divided among
  them (``threads`` each, by default the cores over the jobs). One job at a time runs in this
  process; several run as ``python -m speecheq exp job ...`` processes, each writing its output
  to ``<exp dir>/log/<stage>.log``.
- :class:`SlurmLauncher`: on a Slurm cluster through submitit (:mod:`speecheq.cluster`), one
  job per run, with the resources asked for; a training run with several GPUs or nodes is one
  DDP world of a process per GPU.

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
from functools import partial
from pathlib import Path

from speecheq.cluster import SlurmCluster
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
    """One Slurm job per run, through :class:`~speecheq.cluster.SlurmCluster`; a training run
    spreads over the options' nodes and GPUs (one DDP process each)."""

    def __init__(self, cluster: SlurmCluster) -> None:
        self.cluster = cluster

    def launch(self, jobs: Sequence[Job]) -> list[JobResult]:
        threads = self.cluster.options.job_threads
        calls = [(f"{job.stage} {job.run}", partial(job.execute, threads)) for job in jobs]
        spread = all(job.stage == "train" for job in jobs)
        results, failures = self.cluster.run(calls, spread)
        for name, result in results.items():
            note(f"{name}: {result.done}")
        names = [name for name, _ in calls]
        if failures:
            failed = zip(jobs, names, strict=True)
            raise _failed([(job, failures[name]) for job, name in failed if name in failures])
        return [results[name] for name in names]
