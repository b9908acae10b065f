"""Run a plan: train each run, decode its test sets, score the reports.

A **job** is one run's training or decoding (:func:`run_job`); a launcher (:mod:`.launch`)
runs the jobs of a plan here or on a cluster. Running again does only what is left: training
resumes the way ``speecheq train --resume auto`` does (a finished run trains nothing; a
checkpoint of other data or another config is an error naming both), and a decode directory
is redone only when it is missing or older than its model or its test data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from speecheq.config import load_config
from speecheq.console import note
from speecheq.experiments.cross import summarise_cross
from speecheq.experiments.curve import summarise_curve
from speecheq.experiments.folds import summarise_folds
from speecheq.experiments.plan import Plan, Run
from speecheq.predict import predict
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.report import write_report
from speecheq.scoring.scores import Report, aggregate
from speecheq.train.state import Resume
from speecheq.train.trainer import MODEL, train

STAGES = ("train", "decode")


@dataclass(frozen=True)
class JobResult:
    """What a job did."""

    run: str
    stage: str
    done: str
    """e.g. ``trained 15 epochs``, ``decoded 1 of 1``."""
    seconds: float


def run_job(
    plan_dir: str | Path,
    run_name: str,
    stage: str,
    *,
    device: str = "auto",
    resume: Resume = "auto",
    threads: int | None = None,
) -> JobResult:
    """Train (``stage="train"``) or decode (``"decode"``) the run ``run_name`` of a plan."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    began = time.perf_counter()
    run = Plan.load(plan_dir).run(run_name)
    done = _train(run, device, resume) if stage == "train" else _decode(run, device)
    return JobResult(run.name, stage, done, time.perf_counter() - began)


def _train(run: Run, device: str, resume: Resume) -> str:
    config = load_config(run.config, run.overrides)
    if run.tasks:
        config = config.with_tasks(run.tasks)
    result = train(
        config,
        run.train,
        run.valid,
        run.exp_dir,
        run.lang_dir,
        resume=resume,
        device=device,
        unlabeled_dir=list(run.unlabeled),
    )
    return f"{len(result.history)} epochs, best {result.best_epoch}"


def _decode(run: Run, device: str) -> str:
    model = Path(run.exp_dir) / MODEL
    decoded = 0
    for test, data_dir in run.tests.items():
        if out_of_date(run.decode_dir(test) / "hyp", [model, Path(data_dir)]):
            predict(model, data_dir, run.decode_dir(test), device=device)
            decoded += 1
    return f"decoded {decoded} of {len(run.tests)}"


def _files(path: Path) -> list[Path]:
    """``path`` if it is a file, else the files under it."""
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def out_of_date(target: Path, sources: Sequence[Path]) -> bool:
    """Whether ``target`` (a file or folder) is missing or older than a file of ``sources``."""
    targets = _files(target) if target.exists() else []
    if not targets:
        return True
    newest = max((f.stat().st_mtime for source in sources for f in _files(source)), default=0.0)
    return min(f.stat().st_mtime for f in targets) < newest


SUMMARIES: dict[str, Callable[[Plan, Path, Sequence[Report]], object]] = {
    "folds": summarise_folds,
    "cross": summarise_cross,
    "curve": summarise_curve,
}
"""Each plan kind's summary of its reports."""


def score(plan_dir: str | Path) -> list[Report]:
    """Score every report of the plan in ``plan_dir`` (``scores.json``, ``scores.md`` and
    confusion plots in each report's folder), then write its kind's summary: the mean ± std over
    seeds of a recipe's folds, the cross-corpus matrices and ablation, the learning curve."""
    plan = Plan.load(plan_dir)
    reports = []
    for spec in plan.reports:
        decoded = [
            read_decode_dir(plan.run(run).decode_dir(test), run) for run, test in spec.decodes
        ]
        report = aggregate(decoded, spec.name)
        report.notes.extend(spec.notes)
        write_report(report, spec.out_dir)
        reports.append(report)
    note(f"{plan_dir}: {len(reports)} report(s) written")
    SUMMARIES[plan.kind](plan, Path(plan_dir), reports)
    return reports
