"""Reports of scores: tables on screen, and ``scores.json``, ``scores.md`` and heat maps on disk."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from speecheq.console import console, print_table
from speecheq.fileio import atomic_write
from speecheq.metrics import ScaleScores
from speecheq.scoring.plots import plot_confusion
from speecheq.scoring.scores import DEFINITIONS, PERCENT_METRICS, Report, metric_name

PERCENT_NOTE = "WA, UA, F1, ECE and TER in %"


def format_value(key: str, value: float) -> str:
    """A metric for display: shares in percent with one decimal, other numbers with three."""
    if metric_name(key) in PERCENT_METRICS:
        return f"{100 * value:.1f}"
    return f"{value:.3f}"


def summary_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The summary table: a row per fold, then mean ± std and pooled (with several folds)."""
    keys = list(report.pooled.metrics)
    rows = [
        [
            fold.name,
            str(fold.utterances),
            *(format_value(k, fold.metrics[k]) if k in fold.metrics else "-" for k in keys),
        ]
        for fold in report.folds
    ]
    if len(report.folds) > 1:
        mean_std = [
            f"{format_value(k, report.mean[k])} ± {format_value(k, report.std[k])}"
            if k in report.std
            else format_value(k, report.mean[k])
            for k in keys
        ]
        rows.append(["mean ± std", "", *mean_std])
        pooled = report.pooled
        rows.append(
            ["pooled", str(pooled.utterances), *(format_value(k, pooled.metrics[k]) for k in keys)]
        )
    return ["fold", "utts", *keys], rows


def per_class_rows(scores: ScaleScores) -> tuple[list[str], list[list[str]]]:
    """Precision, recall and F1 (in %), support and times predicted of each class (a model
    that collapses onto a few classes shows in the last column)."""
    predicted = np.asarray(scores.confusion).sum(axis=0)
    rows = [
        [
            name,
            f"{100 * s.precision:.1f}",
            f"{100 * s.recall:.1f}",
            f"{100 * s.f1:.1f}",
            str(s.support),
            str(int(predicted[scores.classes.index(name)])),
        ]
        for name, s in scores.per_class.items()
    ]
    return ["class", "precision", "recall", "F1", "support", "predicted"], rows


def confusion_rows(scores: ScaleScores) -> tuple[list[str], list[list[str]]]:
    """The confusion matrix: rows reference, columns hypothesis, counts."""
    rows = [
        [name, *(str(count) for count in row)]
        for name, row in zip(scores.classes, scores.confusion, strict=True)
    ]
    return ["ref / hyp", *scores.classes], rows


def _detail_source(report: Report) -> str:
    return "pooled" if len(report.folds) > 1 else report.folds[0].name


def _notes(report: Report) -> list[str]:
    return [*report.pooled.notes, *report.notes]


def _task_groups(
    header: Sequence[str], rows: Sequence[Sequence[str]], width: int
) -> list[list[int]]:
    """Column indexes of summary tables that fit ``width``, each with the fold and utts columns.

    The metric columns of one task stay together; tasks are packed in order.
    """

    def column_width(index: int) -> int:
        cells = [*header[index].split(" "), *(row[index] for row in rows)]
        return max(len(cell) for cell in cells) + 3  # padding and border

    tasks: dict[str, list[int]] = {}
    for index, key in enumerate(header[2:], start=2):
        tasks.setdefault(key.rsplit(" ", 1)[0], []).append(index)
    fixed = column_width(0) + column_width(1) + 1
    groups: list[list[int]] = [[]]
    used = fixed
    for columns in tasks.values():
        needed = sum(column_width(index) for index in columns)
        if groups[-1] and used + needed > width:
            groups.append([])
            used = fixed
        groups[-1].extend(columns)
        used += needed
    return [[0, 1, *group] for group in groups]


def print_report(report: Report) -> None:
    """Print the summary, then per-class scores and confusion matrices of every scale.

    A summary wider than the console is printed as several tables, a few tasks each.
    """
    header, rows = summary_rows(report)
    title = f"{report.name}: {len(report.folds)} fold(s), {PERCENT_NOTE}"
    for number, columns in enumerate(_task_groups(header, rows, console.width)):
        print_table(
            title if number == 0 else "",
            [header[index].replace(" ", "\n") for index in columns],
            [[row[index] for index in columns] for row in rows],
        )
    source = _detail_source(report)
    for scale, scores in report.pooled.scales.items():
        print_table(f"{scale}: per class ({source}, in %)", *per_class_rows(scores))
        print_table(
            f"{scale}: confusion matrix ({source}; rows reference, columns hypothesis)",
            *confusion_rows(scores),
        )
    for note in _notes(report):
        console.print(f"note: {note}", soft_wrap=True)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def markdown_report(report: Report) -> str:
    """The report as Markdown, for inclusion in a recipe's RESULTS.md."""
    source = _detail_source(report)
    parts = [
        f"# Scores: {report.name}\n",
        f"{len(report.folds)} fold(s); {PERCENT_NOTE}.\n",
        markdown_table(*summary_rows(report)),
    ]
    for scale, scores in report.pooled.scales.items():
        parts.append(f"## {scale}: per class ({source}, in %)\n")
        parts.append(markdown_table(*per_class_rows(scores)))
        parts.append(
            f"## {scale}: confusion matrix ({source}; rows reference, columns hypothesis)\n"
        )
        parts.append(markdown_table(*confusion_rows(scores)))
    notes = _notes(report)
    if notes:
        parts.append("## Notes\n")
        parts.append("".join(f"- {note}\n" for note in notes))
    parts.append("## Definitions\n")
    parts.append("".join(f"- **{term}**: {text}.\n" for term, text in DEFINITIONS.items()))
    return "\n".join(parts)


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write ``scores.json``, ``scores.md`` and ``confusion_<scale>.png`` per scale; return them.

    ``scores.json`` holds everything (every fold's scores, mean, std, pooled, notes and the
    definitions); the heat maps show the pooled confusion matrices.
    """
    out_dir = Path(out_dir)
    written = [out_dir / "scores.json", out_dir / "scores.md"]
    with atomic_write(written[0]) as out:
        json.dump({"definitions": DEFINITIONS, **asdict(report)}, out, indent=2, ensure_ascii=False)
        out.write("\n")
    with atomic_write(written[1]) as out:
        out.write(markdown_report(report))
    source = _detail_source(report)
    for scale, scores in report.pooled.scales.items():
        path = out_dir / f"confusion_{scale}.png"
        plot_confusion(scores, f"{report.name}: {scale} ({source})", path)
        written.append(path)
    return written
