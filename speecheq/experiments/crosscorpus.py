"""The cross-corpus experiment (Kim et al. 2017) as a plan, and its summary: the matrix per task
set and the auxiliary-task ablation.

:func:`cross_plan` writes the experiments' data directories
(``<out>/data/<train set>/<fold>/{train,valid,test_<corpus>}``) and the training config with the
design's classes (``<out>/train.yaml``; :mod:`.crossdesign` decides both), and returns the
plan: one run per task set and experiment (``<out>/<task set>/<train set>/<fold>``), and one
report per **cell** (task set, training set, test corpus): its decode directories (the K folds
of a corpus in the training set, or the one whole-set model otherwise) scored together into
``<out>/<task set>/scores/<train set>/<corpus>``. The **matrix** of a task set (rows: training
sets, columns: test corpora) is built from those reports, with the pooled emotion WA and UA.
The **ablation** puts the task sets side by side: for each corpus, within-corpus (the pooled
training set, its speakers held out by folds) and cross-corpus (every other corpus, this one
left out).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from speecheq.config import LabelsConfig, load_config, write_config
from speecheq.console import console, print_table, warn
from speecheq.data.datadir import DataDir
from speecheq.experiments.crossdesign import (
    TRAIN_SET_KINDS,
    Design,
    ExperimentData,
    TrainingSet,
    make_design,
    write_experiment_data,
)
from speecheq.experiments.plan import Plan, Report, Run
from speecheq.fileio import atomic_write
from speecheq.scoring.report import markdown_table
from speecheq.scoring.scores import Report as Scores
from speecheq.tasks.naturalness import single_class_problem

CONFIG = "train.yaml"

METRICS: tuple[str, ...] = ("UA", "WA")
"""The emotion metrics of the matrix, in the order cells show them."""


@dataclass(frozen=True)
class Cell:
    """The pooled scores of one training set on one test corpus."""

    train_set: str
    corpus: str
    within: bool
    """Whether the corpus is in the training set (then scored over speaker-independent folds)."""
    folds: int
    utterances: int
    metrics: dict[str, float]
    """Every pooled metric of the cell's report (``"emotion UA"``, ``"gender WA"``, ...)."""

    def value(self, metric: str) -> float | None:
        return self.metrics.get(f"emotion {metric}")


@dataclass(frozen=True)
class Matrix:
    """One task set's cells, by training set then test corpus."""

    task_set: str
    cells: dict[str, dict[str, Cell]]


def summarise_cross(plan: Plan, plan_dir: Path, reports: Sequence[Scores]) -> list[Matrix]:
    """The matrices of the plan's task sets from the cells' reports; write and print them with
    the ablation (``results.json``, ``results.md`` in the plan's folder)."""
    design = Design.from_dict(plan.summary)
    out_dir = Path(plan.summary["out_dir"])
    specs = zip(plan.reports, reports, strict=True)
    by_dir = {Path(spec.out_dir): report for spec, report in specs}
    matrices = []
    for tasks in design.task_sets:
        tag = task_set_tag(tasks)
        cells: dict[str, dict[str, Cell]] = {}
        for train_set in design.train_sets:
            row = cells[train_set.name] = {}
            for corpus in design.corpora:
                report = by_dir[cell_dir(out_dir, tag, train_set.name, corpus)]
                row[corpus] = _cell(report, train_set, corpus)
        matrices.append(Matrix(tag, cells))
    write_results(out_dir, design, matrices)
    print_results(design, matrices)
    return matrices


def _cell(report: Scores, train_set: TrainingSet, corpus: str) -> Cell:
    """The cell of one training set's report on one test corpus."""
    pooled, within = report.pooled, corpus in train_set.corpora
    metrics = dict(pooled.metrics)
    return Cell(train_set.name, corpus, within, len(report.folds), pooled.utterances, metrics)


def _show(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    values = [cell.value(metric) for metric in METRICS]
    shown = " / ".join("-" if v is None else f"{100 * v:.1f}" for v in values)
    return f"{shown}*" if cell.within else shown


def matrix_rows(design: Design, matrix: Matrix) -> tuple[list[str], list[list[str]]]:
    """Rows: training sets; columns: test corpora; cells ``UA / WA`` in %, ``*`` within."""
    rows = [
        [train_set.label, *(_show(matrix.cells[train_set.name].get(c)) for c in design.corpora)]
        for train_set in design.train_sets
    ]
    return ["training set", *design.corpora], rows


def ablation(design: Design, matrices: Sequence[Matrix]) -> list[dict[str, Any]]:
    """Per task set and corpus: the within-corpus (pooled set) and cross-corpus (all but it)
    cells, where the plan has those training sets."""
    pooled = "+".join(design.corpora)
    rows = []
    for matrix in matrices:
        row: dict[str, Any] = {"task_set": matrix.task_set, "corpora": {}}
        for corpus in design.corpora:
            others = "+".join(c for c in design.corpora if c != corpus)
            row["corpora"][corpus] = {
                "within": _cell_values(matrix, pooled, corpus),
                "cross": _cell_values(matrix, others, corpus),
            }
        for setting in ("within", "cross"):
            for metric in METRICS:
                values = [row["corpora"][c][setting] for c in design.corpora]
                if all(v is not None for v in values):
                    row.setdefault("mean", {}).setdefault(setting, {})[metric] = sum(
                        v[metric] for v in values
                    ) / len(values)
        rows.append(row)
    return rows


def _cell_values(matrix: Matrix, train_set: str, corpus: str) -> dict[str, float] | None:
    """The cell's emotion metrics, or None where the design has no such cell."""
    cell = matrix.cells.get(train_set, {}).get(corpus)
    values: dict[str, float] = {}
    for metric in METRICS:
        value = None if cell is None else cell.value(metric)
        if value is None:
            return None
        values[metric] = value
    return values


def ablation_rows(
    design: Design, rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    """The ablation as a table: a row per task set, ``UA / WA`` in % per corpus and setting."""

    def show(values: dict[str, float] | None) -> str:
        if values is None:
            return "-"
        return " / ".join(f"{100 * values[metric]:.1f}" for metric in METRICS)

    header = ["task set"]
    for corpus in design.corpora:
        header += [f"{corpus} within", f"{corpus} cross"]
    header += ["mean within", "mean cross"]
    table = []
    for row in rows:
        cells = [row["task_set"]]
        for corpus in design.corpora:
            cells += [show(row["corpora"][corpus][s]) for s in ("within", "cross")]
        mean = row.get("mean", {})
        cells += [show(mean.get(s)) for s in ("within", "cross")]
        table.append(cells)
    return header, table


def legend(design: Design) -> list[str]:
    """What the numbers of the tables are."""
    metrics = " / ".join(METRICS)
    return [
        f"cells: emotion {metrics} in %, pooled over the test utterances of the cell; classes: "
        f"{', '.join(design.classes)}",
        f"*: the test corpus is in the training set; its speakers were dealt into "
        f"{design.num_folds} folds, each fold's model trained without them",
        "no *: the model was trained on the whole training set and tested on the whole corpus",
        "ablation within: trained on all corpora pooled; cross: trained on all corpora but the "
        "tested one",
    ]


def write_results(out_dir: Path, design: Design, matrices: Sequence[Matrix]) -> None:
    """Write ``results.json`` and ``results.md`` (every matrix and the ablation) in ``out_dir``."""
    rows = ablation(design, matrices)
    data = {
        "corpora": list(design.corpora),
        "classes": list(design.classes),
        "num_folds": design.num_folds,
        "train_sets": [asdict(s) | {"name": s.name} for s in design.train_sets],
        "matrices": {
            m.task_set: {
                ts: {c: asdict(cell) for c, cell in row.items()} for ts, row in m.cells.items()
            }
            for m in matrices
        },
        "ablation": rows,
    }
    with atomic_write(out_dir / "results.json") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    parts = ["# Cross-corpus results\n", "".join(f"- {line}\n" for line in legend(design))]
    if len(matrices) > 1:
        parts += ["## Ablation: auxiliary tasks\n", markdown_table(*ablation_rows(design, rows))]
    for matrix in matrices:
        parts += [f"## Task set {matrix.task_set}\n", markdown_table(*matrix_rows(design, matrix))]
    with atomic_write(out_dir / "results.md") as out:
        out.write("\n".join(parts))


def print_results(design: Design, matrices: Sequence[Matrix]) -> None:
    """Print every matrix, then the ablation (with more than one task set), then the legend."""
    for matrix in matrices:
        print_table(f"task set {matrix.task_set}", *matrix_rows(design, matrix))
    if len(matrices) > 1:
        print_table("ablation: auxiliary tasks", *ablation_rows(design, ablation(design, matrices)))
    for line in legend(design):
        console.print(f"note: {line}", soft_wrap=True)


def task_set_tag(tasks: Sequence[str]) -> str:
    """The folder name of a task set, e.g. ``emotion-gender``."""
    return "-".join(tasks)


def cross_plan(
    data_dir: str | Path,
    out_dir: str | Path,
    config_path: str | Path,
    *,
    lang_dir: str | Path | None = None,
    corpora: Sequence[str] | None = None,
    train_sets: Sequence[str] = TRAIN_SET_KINDS,
    num_folds: int = 2,
    valid_fraction: float = 0.1,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    task_sets: Sequence[Sequence[str]] = (),
) -> tuple[Plan, dict[str, ExperimentData]]:
    """Design the experiments over the combined data directory ``data_dir``, write their data
    and config, and return the plan (and each experiment's data, by path).

    ``task_sets`` default to the config's tasks. The classes default to those every corpus
    shares, after the config's ``labels.merge``. Warns about training sets on which the
    naturalness task has a single class.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    config = load_config(config_path)
    sets = [tuple(tasks) for tasks in task_sets] or [tuple(config.tasks)]
    for tasks in sets:
        config.with_tasks(tasks)  # raises on an unknown task name
    data = DataDir.load(data_dir)
    design = make_design(
        data,
        corpora=corpora,
        train_sets=train_sets,
        num_folds=num_folds,
        valid_fraction=valid_fraction,
        seed=seed,
        classes=classes,
        merge=config.labels.merge,
        task_sets=sets,
        lang_dir=None if lang_dir is None else str(lang_dir),
    )
    written = write_experiment_data(design, data, out_dir)
    labels = LabelsConfig(design.classes, dict(config.labels.merge))
    write_config(dataclasses.replace(config, labels=labels), out_dir / CONFIG)
    if any("naturalness" in tasks for tasks in sets):
        utt2corpus = data.get("utt2corpus")
        for train_set in design.train_sets:
            chosen = [utt for utt in data.utts if utt2corpus[utt] in train_set.corpora]
            problem = single_class_problem(data.subset(chosen))
            if problem is not None:
                warn(f"training set {train_set.name}: {problem}")
    runs, reports = [], []
    for tasks in design.task_sets:
        tag = task_set_tag(tasks)
        for experiment in design.experiments:
            root = out_dir / "data" / experiment.path
            runs.append(
                Run(
                    name=f"{tag}/{experiment.path}",
                    exp_dir=str(out_dir / tag / experiment.path),
                    train=str(root / "train"),
                    valid=str(root / "valid"),
                    tests={corpus: str(root / f"test_{corpus}") for corpus in experiment.tests},
                    config=str(out_dir / CONFIG),
                    tasks=tuple(tasks),
                    lang_dir=design.lang_dir,
                )
            )
        for train_set in design.train_sets:
            for corpus in design.corpora:
                decodes = tuple(
                    (f"{tag}/{e.path}", corpus)
                    for e in design.cell_experiments(train_set.name, corpus)
                )
                name = f"{tag}: {train_set.name} -> {corpus}"
                reports.append(
                    Report(name, str(cell_dir(out_dir, tag, train_set.name, corpus)), decodes)
                )
    return Plan("cross", runs, reports, design.to_dict() | {"out_dir": str(out_dir)}), written


def cell_dir(out_dir: Path, tag: str, train_set: str, corpus: str) -> Path:
    """Where the report of a cell is written."""
    return out_dir / tag / "scores" / train_set / corpus
