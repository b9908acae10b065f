"""Score a cross-corpus plan: a report per cell, the matrix per task set, and the ablation.

A **cell** is (task set, training set, test corpus): its decode directories (the K folds of a
corpus in the training set, or the one whole-set model otherwise) are scored together by
:func:`speecheq.scoring.scores.aggregate` and written as a full report
(``<task set>/scores/<train set>/<corpus>/scores.json``, ``scores.md``, confusion plots). The
**matrix** of a task set (rows: training sets, columns: test corpora) is built from those
``scores.json`` files, with the pooled category WA and UA. The **ablation** (Kim et al. 2017)
puts the task sets side by side: for each corpus, within-corpus (the pooled training set, its
speakers held out by folds) and cross-corpus (every other corpus, this one left out).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from speecheq.console import console, print_table
from speecheq.crosscorpus.plan import Plan, TrainingSet
from speecheq.crosscorpus.run import task_set_tag
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.report import markdown_table, write_report
from speecheq.scoring.scores import aggregate

METRICS: tuple[str, ...] = ("UA", "WA")
"""The category metrics of the matrix, in the order cells show them."""


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


def load_cell(path: Path, train_set: TrainingSet, corpus: str) -> Cell:
    """Read a cell from the ``scores.json`` that ``speecheq score`` or :func:`score` wrote."""
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        pooled = report["pooled"]
        return Cell(
            train_set.name,
            corpus,
            corpus in train_set.corpora,
            len(report["folds"]),
            int(pooled["utterances"]),
            {key: float(value) for key, value in pooled["metrics"].items()},
        )
    except FileNotFoundError:
        raise SpeechEQError(f"{path}: no scores (run 'speecheq cross score' first)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise SpeechEQError(f"{path}: not a scores.json of 'speecheq score' ({err})") from None


def cell_dir(out_dir: Path, tag: str, train_set: str, corpus: str) -> Path:
    """Where the report of a cell is written."""
    return out_dir / tag / "scores" / train_set / corpus


def score(out_dir: str | Path) -> list[Matrix]:
    """Score every cell of every task set of the plan in ``out_dir``; write the matrices."""
    out_dir = Path(out_dir)
    plan = Plan.load(out_dir)
    matrices = []
    for tasks in plan.task_sets:
        tag = task_set_tag(tasks)
        for train_set in plan.train_sets:
            for corpus in plan.corpora:
                experiments = plan.cell_experiments(train_set.name, corpus)
                decoded = [
                    read_decode_dir(out_dir / tag / e.path / f"decode_{corpus}", e.fold)
                    for e in experiments
                ]
                report = aggregate(decoded, f"{tag}: {train_set.name} -> {corpus}")
                write_report(report, cell_dir(out_dir, tag, train_set.name, corpus))
        matrices.append(load_matrix(out_dir, plan, tag))
    write_results(out_dir, plan, matrices)
    return matrices


def load_matrix(out_dir: Path, plan: Plan, tag: str) -> Matrix:
    """A task set's matrix from its cells' ``scores.json``."""
    cells = {
        train_set.name: {
            corpus: load_cell(
                cell_dir(out_dir, tag, train_set.name, corpus) / "scores.json", train_set, corpus
            )
            for corpus in plan.corpora
        }
        for train_set in plan.train_sets
    }
    return Matrix(tag, cells)


def _show(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    values = [cell.value(metric) for metric in METRICS]
    shown = " / ".join("-" if v is None else f"{100 * v:.1f}" for v in values)
    return f"{shown}*" if cell.within else shown


def matrix_rows(plan: Plan, matrix: Matrix) -> tuple[list[str], list[list[str]]]:
    """Rows: training sets; columns: test corpora; cells ``UA / WA`` in %, ``*`` within."""
    rows = [
        [train_set.label, *(_show(matrix.cells[train_set.name].get(c)) for c in plan.corpora)]
        for train_set in plan.train_sets
    ]
    return ["training set", *plan.corpora], rows


def ablation(plan: Plan, matrices: Sequence[Matrix]) -> list[dict[str, Any]]:
    """Per task set and corpus: the within-corpus (pooled set) and cross-corpus (all but it)
    cells, where the plan has those training sets."""
    pooled = "+".join(plan.corpora)
    rows = []
    for matrix in matrices:
        row: dict[str, Any] = {"task_set": matrix.task_set, "corpora": {}}
        for corpus in plan.corpora:
            others = "+".join(c for c in plan.corpora if c != corpus)
            row["corpora"][corpus] = {
                "within": _cell_values(matrix, pooled, corpus),
                "cross": _cell_values(matrix, others, corpus),
            }
        for setting in ("within", "cross"):
            for metric in METRICS:
                values = [row["corpora"][c][setting] for c in plan.corpora]
                if all(v is not None for v in values):
                    row.setdefault("mean", {}).setdefault(setting, {})[metric] = sum(
                        v[metric] for v in values
                    ) / len(values)
        rows.append(row)
    return rows


def _cell_values(matrix: Matrix, train_set: str, corpus: str) -> dict[str, float] | None:
    """The cell's category metrics, or None where the plan has no such cell."""
    cell = matrix.cells.get(train_set, {}).get(corpus)
    values: dict[str, float] = {}
    for metric in METRICS:
        value = None if cell is None else cell.value(metric)
        if value is None:
            return None
        values[metric] = value
    return values


def ablation_rows(plan: Plan, rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The ablation as a table: a row per task set, ``UA / WA`` in % per corpus and setting."""

    def show(values: dict[str, float] | None) -> str:
        if values is None:
            return "-"
        return " / ".join(f"{100 * values[metric]:.1f}" for metric in METRICS)

    header = ["task set"]
    for corpus in plan.corpora:
        header += [f"{corpus} within", f"{corpus} cross"]
    header += ["mean within", "mean cross"]
    table = []
    for row in rows:
        cells = [row["task_set"]]
        for corpus in plan.corpora:
            cells += [show(row["corpora"][corpus][s]) for s in ("within", "cross")]
        mean = row.get("mean", {})
        cells += [show(mean.get(s)) for s in ("within", "cross")]
        table.append(cells)
    return header, table


def legend(plan: Plan) -> list[str]:
    """What the numbers of the tables are."""
    metrics = " / ".join(METRICS)
    return [
        f"cells: category {metrics} in %, pooled over the test utterances of the cell; classes: "
        f"{', '.join(plan.classes)}",
        f"*: the test corpus is in the training set; its speakers were dealt into "
        f"{plan.num_folds} folds, each fold's model trained without them",
        "no *: the model was trained on the whole training set and tested on the whole corpus",
        "ablation within: trained on all corpora pooled; cross: trained on all corpora but the "
        "tested one",
    ]


def write_results(out_dir: Path, plan: Plan, matrices: Sequence[Matrix]) -> None:
    """Write ``results.json`` and ``results.md`` (every matrix and the ablation) in ``out_dir``."""
    rows = ablation(plan, matrices)
    data = {
        "corpora": list(plan.corpora),
        "classes": list(plan.classes),
        "num_folds": plan.num_folds,
        "train_sets": [asdict(s) | {"name": s.name} for s in plan.train_sets],
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
    parts = ["# Cross-corpus results\n", "".join(f"- {line}\n" for line in legend(plan))]
    if len(matrices) > 1:
        parts += ["## Ablation: auxiliary tasks\n", markdown_table(*ablation_rows(plan, rows))]
    for matrix in matrices:
        parts += [f"## Task set {matrix.task_set}\n", markdown_table(*matrix_rows(plan, matrix))]
    with atomic_write(out_dir / "results.md") as out:
        out.write("\n".join(parts))


def print_results(plan: Plan, matrices: Sequence[Matrix]) -> None:
    """Print every matrix, then the ablation (with more than one task set), then the legend."""
    for matrix in matrices:
        print_table(f"task set {matrix.task_set}", *matrix_rows(plan, matrix))
    if len(matrices) > 1:
        print_table("ablation: auxiliary tasks", *ablation_rows(plan, ablation(plan, matrices)))
    for line in legend(plan):
        console.print(f"note: {line}", soft_wrap=True)
