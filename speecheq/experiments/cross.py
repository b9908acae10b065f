"""Cross-corpus experiments (Kim et al. 2017): the design, the plan and its summary.

Rows of the matrix are training sets (each corpus alone, all pooled, all but one), columns test
corpora. A corpus in the training set is tested speaker-independently: its speakers are dealt
into K folds (by gender, then id), fold k's model trains without the fold-k speakers of every
corpus of the set, and the cell pools the K folds. A corpus outside the set is tested whole, by
one model of the whole set. :func:`summarise_cross` writes the cells (``results.csv``), each
task set's matrix and the auxiliary-task ablation (``results.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pandas as pd

from speecheq.config import LabelsConfig, load_config, write_config
from speecheq.console import console, print_table
from speecheq.data.datadir import DataDir
from speecheq.data.folds import Fold, deal_speakers, draw_valid
from speecheq.data.ops import speaker_corpora
from speecheq.errors import SpeechEQError
from speecheq.experiments.plan import Plan, Report, Run
from speecheq.fileio import atomic_write
from speecheq.labels import CATEGORIES, ClassMap
from speecheq.scoring.report import markdown_table
from speecheq.scoring.scores import Report as Scores

TRAIN_SET_KINDS = ("alone", "pooled", "loo")
"""Kinds of training sets: each corpus alone, all corpora pooled, leave one corpus out."""
WHOLE = "whole"
"""The fold name of the training on a whole training set (for the corpora it does not hold)."""
CONFIG = "train.yaml"
METRICS = ("emotion UA", "emotion WA")
"""The metrics a cell shows, in order."""


@dataclass(frozen=True)
class TrainingSet:
    """The corpora a model is trained on, and the kinds of set they make (``all but casia``)."""

    corpora: tuple[str, ...]
    kinds: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.corpora)


@dataclass(frozen=True)
class Experiment:
    """One training: a training set and a fold (or :data:`WHOLE`), and the corpora it tests."""

    train_set: TrainingSet
    fold: str
    tests: tuple[str, ...]

    @property
    def path(self) -> str:
        """The experiment's folder, relative to the plan's data or task-set folder."""
        return f"{self.train_set.name}/{self.fold}"


@dataclass(frozen=True)
class Design:
    """Which models are trained on which data and tested on what."""

    corpora: tuple[str, ...]
    classes: tuple[str, ...]
    folds: dict[str, list[list[str]]]
    """Corpus -> its speakers in each fold (a fold may have none when K exceeds its speakers)."""
    train_sets: list[TrainingSet]
    experiments: list[Experiment]
    valid_fraction: float
    seed: int


def shared_classes(
    data: DataDir, corpora: Sequence[str], merge: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The emotion categories every corpus of ``corpora`` has (after ``merge``), in the order of
    :data:`speecheq.labels.CATEGORIES`."""
    merge = dict(merge or {})
    utt2corpus = data.get("utt2corpus")
    present: dict[str, set[str]] = {corpus: set() for corpus in corpora}
    for utt, category in data.get("utt2emo").items():
        present.get(utt2corpus.get(utt, ""), set()).add(merge.get(category, category))
    shared = set.intersection(*present.values()) if present else set()
    classes = tuple(name for name in CATEGORIES if name in shared)
    if len(classes) < 2:
        found = "; ".join(f"{c}: {', '.join(sorted(v)) or 'none'}" for c, v in present.items())
        raise SpeechEQError(
            f"the corpora share fewer than 2 emotion classes ({found}); choose classes and "
            "merges explicitly"
        )
    return classes


def training_sets(corpora: Sequence[str], requested: Iterable[str]) -> list[TrainingSet]:
    """The training sets of ``requested`` kinds (:data:`TRAIN_SET_KINDS`) or explicit sets
    (``casia+emodb``). Sets that come out the same are one, with all their kinds."""
    everything = tuple(sorted(corpora))
    kinds: dict[tuple[str, ...], list[str]] = {}
    for item in requested:
        if item == "loo" and len(everything) < 2:
            raise SpeechEQError("leave-one-corpus-out training sets need at least 2 corpora")
        chosen = {
            "alone": [((c,), "alone") for c in everything],
            "pooled": [(everything, "pooled")],
            "loo": [(tuple(x for x in everything if x != c), f"all but {c}") for c in everything],
        }.get(item, [(tuple(sorted({c for c in item.split("+") if c})), "")])
        for corpora_of_set, kind in chosen:
            unknown = sorted(set(corpora_of_set) - set(everything))
            if unknown or not corpora_of_set:
                raise SpeechEQError(
                    f"training set '{item}': unknown corpus {', '.join(unknown) or '(none)'} "
                    f"(corpora: {', '.join(everything)}; kinds: {', '.join(TRAIN_SET_KINDS)})"
                )
            labels = kinds.setdefault(corpora_of_set, [])
            if kind and kind not in labels:
                labels.append(kind)
    if not kinds:
        raise SpeechEQError("no training set was requested")
    return [TrainingSet(key, tuple(kinds[key])) for key in sorted(kinds, key=lambda k: (len(k), k))]


def make_design(
    data: DataDir,
    *,
    corpora: Sequence[str] | None = None,
    train_sets: Sequence[str] = TRAIN_SET_KINDS,
    num_folds: int = 2,
    valid_fraction: float = 0.1,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    merge: Mapping[str, str] | None = None,
) -> Design:
    """Design the experiments over ``data``, corpora combined with ``utt2corpus``: ``corpora``
    (default: all) are the test columns; ``classes`` default to :func:`shared_classes`."""
    if missing := [utt for utt in data.utts if utt not in data.get("utt2corpus")]:
        raise SpeechEQError(
            f"utt2corpus: utterance '{missing[0]}' has no corpus (combine the corpora with "
            "'speecheq data combine --prefix')"
        )
    speakers: dict[str, list[str]] = {}
    for speaker, corpus in sorted(speaker_corpora(data).items(), key=lambda item: item[::-1]):
        speakers.setdefault(corpus, []).append(speaker)
    chosen = tuple(sorted(corpora or speakers))
    if unknown := sorted(set(chosen) - set(speakers)):
        raise SpeechEQError(
            f"corpus {', '.join(unknown)} is not in utt2corpus (found: {', '.join(speakers)})"
        )
    if num_folds < 2:
        raise SpeechEQError(f"--num-folds must be at least 2, got {num_folds}")
    class_list = tuple(classes) if classes else shared_classes(data, chosen, merge)
    ClassMap.build(class_list, merge)  # raises on an unknown class or a bad merge
    sets = training_sets(chosen, train_sets)
    folds = {c: deal_speakers(speakers[c], data.get("spk2gender"), num_folds) for c in chosen}
    experiments: list[Experiment] = []
    for train_set in sets:
        inside = [c for c in chosen if c in train_set.corpora]
        for corpus in inside:
            if len(speakers[corpus]) < 2:
                raise SpeechEQError(
                    f"corpus '{corpus}' has 1 speaker: testing it speaker-independently within "
                    f"training set '{train_set.name}' needs at least 2"
                )
        for index in range(num_folds):
            tests = tuple(c for c in inside if folds[c][index])
            if tests:
                experiments.append(Experiment(train_set, f"fold{index + 1}", tests))
        outside = tuple(c for c in chosen if c not in train_set.corpora)
        if outside:
            experiments.append(Experiment(train_set, WHOLE, outside))
    return Design(chosen, class_list, folds, sets, experiments, valid_fraction, seed)


def experiment_data(design: Design, data: DataDir, experiment: Experiment) -> Fold:
    """The train, valid and test data of ``experiment`` (its test corpora in one directory),
    checked speaker-independent: validation utterances come from the training speakers only."""
    utt2corpus, utt2spk = data.get("utt2corpus"), data.utt2spk
    held_out: set[str] = set()
    if experiment.fold != WHOLE:
        index = int(experiment.fold.removeprefix("fold")) - 1
        held_out = {spk for c in experiment.tests for spk in design.folds[c][index]}
    trained = experiment.train_set.corpora
    rest = [u for u in data.utts if utt2corpus[u] in trained and utt2spk[u] not in held_out]
    valid = draw_valid(data, rest, design.valid_fraction, design.seed)
    if not set(rest) - valid:
        raise SpeechEQError(f"experiment {experiment.path} has no training utterance")
    whole = experiment.tests if experiment.fold == WHOLE else ()
    test = data.subset(u for u in data.utts if utt2spk[u] in held_out or utt2corpus[u] in whole)
    fold = Fold(experiment.path, data.subset(set(rest) - valid), data.subset(valid), test)
    if not fold.speaker_independent:
        raise SpeechEQError(f"experiment {experiment.path}: a test speaker is also trained on")
    return fold


def cross_plan(
    data_dir: str | Path,
    out_dir: str | Path,
    config_path: str | Path,
    *,
    lang_dir: str | Path | None = None,
    task_sets: Sequence[Sequence[str]] = (),
    **design_options: Any,
) -> tuple[Plan, dict[str, Fold]]:
    """Design the experiments over the combined data directory ``data_dir`` (``design_options``
    go to :func:`make_design`; ``task_sets`` default to the config's tasks), write their data
    and config, and return the plan and each experiment's data. Unchanged data directories stay
    as they are, so their models stay current."""
    out_dir, config = Path(out_dir), load_config(config_path)
    sets = [tuple(tasks) for tasks in task_sets] or [tuple(config.tasks)]
    for tasks in sets:
        config.with_tasks(tasks)  # raises on an unknown task name
    data = DataDir.load(data_dir)
    design = make_design(data, merge=config.labels.merge, **design_options)
    written: dict[str, Fold] = {}
    for experiment in design.experiments:
        parts = written[experiment.path] = experiment_data(design, data, experiment)
        root = out_dir / "data" / experiment.path
        parts.train.save(root / "train")
        parts.valid.save(root / "valid")
        corpus_of = parts.test.get("utt2corpus")
        for corpus in experiment.tests:
            test = parts.test.subset(u for u, c in corpus_of.items() if c == corpus)
            test.save(root / f"test_{corpus}")
    labels = LabelsConfig(design.classes, dict(config.labels.merge))
    write_config(dataclasses.replace(config, labels=labels), out_dir / CONFIG)
    runs, reports, cells = [], [], []
    lang = None if lang_dir is None else str(lang_dir)
    for tasks in sets:
        tag = "-".join(tasks)
        for e in design.experiments:
            root, name = out_dir / "data" / e.path, f"{tag}/{e.path}"
            tests = {c: str(root / f"test_{c}") for c in e.tests}
            parts = (str(root / "train"), str(root / "valid"), tests, str(out_dir / CONFIG), tasks)
            runs.append(Run(name, str(out_dir / name), *parts, lang_dir=lang))
        for train_set, corpus in product(design.train_sets, design.corpora):
            cell = (tag, train_set.name, corpus)
            ran = [e for e in design.experiments if e.train_set == train_set and corpus in e.tests]
            decodes = tuple((f"{tag}/{e.path}", corpus) for e in ran)
            scores_dir = str(out_dir / tag / "scores" / train_set.name / corpus)
            reports.append(Report("{}: {} -> {}".format(*cell), scores_dir, decodes))
            cells.append(cell)
    summary = {
        "out_dir": str(out_dir),
        "corpora": list(design.corpora),
        "classes": list(design.classes),
        "num_folds": len(next(iter(design.folds.values()))),
        "train_sets": {s.name: s.kinds for s in design.train_sets},
        "cells": cells,
    }
    return Plan("cross", runs, reports, summary), written


def summarise_cross(plan: Plan, plan_dir: Path, reports: Sequence[Scores]) -> pd.DataFrame:
    """The cells of the plan from their reports, one row each; written (``results.csv``), and
    written and printed as each task set's matrix and the ablation (``results.md``)."""
    summary = plan.summary
    cells = pd.DataFrame(
        {
            "task_set": tag,
            "train_set": train_set,
            "corpus": corpus,
            "within": corpus in train_set.split("+"),
            "folds": len(report.folds),
            "utterances": report.pooled.utterances,
            **report.pooled.metrics,
        }
        for (tag, train_set, corpus), report in zip(summary["cells"], reports, strict=True)
    )
    cells = cells.reindex(columns=cells.columns.union(METRICS, sort=False))
    out_dir, corpora = Path(summary["out_dir"]), summary["corpora"]
    tables = [(f"task set {tag}", *_matrix(cells, summary, tag)) for tag in cells.task_set.unique()]
    if len(tables) > 1:
        tables.insert(0, ("ablation: auxiliary tasks", *_ablation(cells, corpora)))
    legend = [
        f"cells: {' / '.join(METRICS)} in %, pooled over the cell's test utterances; classes: "
        f"{', '.join(summary['classes'])}",
        f"*: the corpus is in the training set, tested over {summary['num_folds']} speaker folds; "
        "without: trained on the whole training set, tested on the whole corpus",
        "ablation within: trained on all corpora pooled; cross: on all but the tested one",
    ]
    with atomic_write(out_dir / "results.csv") as out:
        cells.to_csv(out, index=False)
    with atomic_write(out_dir / "results.md") as out:
        out.write("# Cross-corpus results\n\n" + "".join(f"- {line}\n" for line in legend))
        for title, header, table in tables:
            out.write(f"\n## {title[0].upper()}{title[1:]}\n\n{markdown_table(header, table)}")
    for title, header, table in tables:
        print_table(title, header, table)
    for line in legend:
        console.print(f"note: {line}", soft_wrap=True)
    return cells


def _shown(cells: pd.DataFrame, star: bool) -> pd.Series:
    """Each row's metrics as ``UA / WA`` in % (``-`` where missing), ``*`` after a within cell."""
    text = cells[list(METRICS)].apply(
        lambda row: "-" if row.isna().all() else " / ".join(f"{100 * v:.1f}" for v in row), axis=1
    )
    return text + (cells["within"].map({True: "*", False: ""}) if star else "")


def _grid(frame: pd.DataFrame, index: Any, columns: Any, keys: tuple, star: bool) -> list[list]:
    """``frame``'s rows shown (:func:`_shown`) in a grid of ``index`` by ``columns`` values, in
    the order of ``keys`` (rows, columns); ``-`` where it has no row."""
    shown = frame.assign(shown=_shown(frame, star))
    grid = shown.pivot(index=index, columns=columns, values="shown")
    return grid.reindex(index=keys[0], columns=keys[1]).fillna("-").to_numpy().tolist()


def _matrix(cells: pd.DataFrame, summary: dict, tag: str) -> tuple[list[str], list[list[str]]]:
    """One task set's matrix: a row per training set, a column per test corpus."""
    sets, corpora = summary["train_sets"], summary["corpora"]
    grid = _grid(cells[cells.task_set == tag], "train_set", "corpus", (list(sets), corpora), True)
    labels = [f"{name} ({'; '.join(kinds)})" if kinds else name for name, kinds in sets.items()]
    return ["training set", *corpora], [[a, *row] for a, row in zip(labels, grid, strict=True)]


def _ablation(cells: pd.DataFrame, corpora: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """A row per task set: per corpus, the within (pooled) and cross (all but it) cells, and their
    mean over the corpora where every corpus has both."""
    others = {c: "+".join(x for x in corpora if x != c) for c in corpora}
    within = cells[cells.train_set == "+".join(corpora)].assign(setting="within")
    cross = cells[cells.train_set == cells.corpus.map(others)].assign(setting="cross")
    both = pd.concat([within, cross], ignore_index=True)
    mean = both.groupby(["task_set", "setting"])[list(METRICS)].sum(min_count=len(corpora))
    mean = (mean / len(corpora)).reset_index().assign(corpus="mean")
    order = [(c, s) for c in (*corpora, "mean") for s in ("within", "cross")]
    tags = list(cells.task_set.unique())
    both = pd.concat([both, mean], ignore_index=True)
    grid = _grid(both, "task_set", ["corpus", "setting"], (tags, order), False)
    header = ["task set", *(f"{c} {s}" for c, s in order)]
    return header, [[tag, *row] for tag, row in zip(tags, grid, strict=True)]
