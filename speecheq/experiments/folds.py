"""A recipe's plan: one run per fold of ``speecheq data split`` (and per seed), one report.

With several seeds, each seed's folds make a report of their own (``<exp>/seed<s>/scores``),
and the summary gives, for every metric, the mean and the standard deviation over the seeds of
each seed's mean over folds (``<exp>/scores/seeds.md``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speecheq.console import note, print_table
from speecheq.data.datadir import DataDir
from speecheq.data.folds import SPEAKER_DEPENDENT_NOTE, fold_names, speaker_dependent_folds
from speecheq.errors import SpeechEQError
from speecheq.experiments.ensemble import ENSEMBLE, ensemble_report
from speecheq.experiments.plan import Plan, Report, Run
from speecheq.fileio import atomic_write
from speecheq.scoring.report import PERCENT_NOTE, format_value, markdown_table, write_report
from speecheq.scoring.scores import Report as Scores

SEEDS_REPORT = "seeds"


def folds_plan(
    folds_dir: str | Path,
    exp_dir: str | Path,
    config: str | Path,
    *,
    name: str | None = None,
    tasks: Sequence[str] = (),
    overrides: Sequence[str] = (),
    lang_dir: str | Path | None = None,
    folds: Sequence[str] | None = None,
    seeds: Sequence[int] = (),
    unlabeled: Sequence[str | Path] = (),
) -> Plan:
    """One run per fold of ``folds_dir`` (those named in ``folds``, else all) and per seed.

    Without ``seeds``, runs are ``exp_dir/<fold>`` with the config's seed, scored together into
    ``exp_dir/scores``; with seeds, ``exp_dir/seed<s>/<fold>`` and ``exp_dir/seed<s>/scores``.
    Every run also trains on the speech of the ``unlabeled`` data directories (the tasks that
    learn from it, e.g. ``aae``), which must hold no test utterance of any fold.
    """
    folds_dir, exp_dir = Path(folds_dir), Path(exp_dir)
    found = fold_names(folds_dir)
    chosen = list(folds) if folds else found
    unknown = sorted(set(chosen) - set(found))
    if unknown:
        raise SpeechEQError(
            f"{folds_dir}: no fold {', '.join(unknown)} (folds: {', '.join(found)})"
        )
    _check_unlabeled(folds_dir, chosen, unlabeled)
    title = name or exp_dir.name
    dependent = speaker_dependent_folds(folds_dir, chosen)
    notes = (f"{SPEAKER_DEPENDENT_NOTE} ({', '.join(dependent)})",) if dependent else ()
    if dependent:
        title = f"{title} (speaker-dependent)"
    runs: list[Run] = []
    reports: list[Report] = []
    for seed in seeds or [None]:
        prefix = "" if seed is None else f"seed{seed}/"
        group = []
        for fold in chosen:
            run = Run(
                name=f"{prefix}{fold}",
                exp_dir=str(exp_dir / prefix / fold),
                train=str(folds_dir / fold / "train"),
                valid=str(folds_dir / fold / "valid"),
                tests={"test": str(folds_dir / fold / "test")},
                config=str(config),
                tasks=tuple(tasks),
                overrides=(*overrides, *([] if seed is None else [f"seed={seed}"])),
                lang_dir=None if lang_dir is None else str(lang_dir),
                unlabeled=tuple(str(path) for path in unlabeled),
            )
            runs.append(run)
            group.append((run.name, "test"))
        label = title if seed is None else f"{title} (seed {seed})"
        reports.append(Report(label, str(exp_dir / prefix / "scores"), tuple(group), notes))
    summary = {"seeds": list(seeds), "out_dir": str(exp_dir / "scores"), "name": title}
    return Plan("folds", runs, reports, summary)


def _check_unlabeled(
    folds_dir: Path, folds: Sequence[str], unlabeled: Sequence[str | Path]
) -> None:
    """Refuse unlabeled speech that holds a fold's test utterance: the model would hear the
    test speech in training."""
    if not unlabeled:
        return
    tests = {fold: set(DataDir.load(folds_dir / fold / "test").utts) for fold in folds}
    for path in unlabeled:
        utts = set(DataDir.load(path).utts)
        for fold, test in tests.items():
            shared = sorted(utts & test)
            if shared:
                raise SpeechEQError(
                    f"{path}: holds {len(shared)} test utterance(s) of fold {fold} (e.g. "
                    f"'{shared[0]}'); unlabeled speech must come from outside the folds' corpus"
                )


def summarise_folds(plan: Plan, plan_dir: Path, reports: Sequence[Scores]) -> None:
    """A recipe's summary: the mean ± std over seeds (:func:`summarise_seeds`) and the report of
    the seeds' ensemble (``PLAN_DIR/ensemble/scores``), with two seeds or more."""
    summarise_seeds(plan, [report.mean for report in reports])
    ensemble = ensemble_report(plan, plan_dir)
    if ensemble is not None:
        write_report(ensemble, plan_dir / ENSEMBLE / "scores")
        note(f"{ensemble.name}: written to {plan_dir / ENSEMBLE / 'scores'}")


def summarise_seeds(plan: Plan, means: Sequence[dict[str, float]]) -> list[list[str]] | None:
    """With several seeds, write and print the mean ± std over seeds of each seed's fold mean.

    ``means`` are the reports' means over folds, in the order of the plan's seeds.
    """
    seeds = plan.summary.get("seeds") or []
    if len(seeds) < 2:
        return None
    keys = [key for key in means[0] if all(key in mean for mean in means)]
    rows = []
    for key in keys:
        values = np.array([mean[key] for mean in means])
        per_seed = [format_value(key, value) for value in values]
        spread = f"{format_value(key, values.mean())} ± {format_value(key, values.std(ddof=1))}"
        rows.append([key, *per_seed, spread])
    header = ["metric", *(f"seed {seed}" for seed in seeds), "mean ± std"]
    title = f"{plan.summary['name']}: mean over folds per seed, then over {len(seeds)} seeds"
    print_table(title, header, rows)
    out_dir = Path(plan.summary["out_dir"])
    with atomic_write(out_dir / f"{SEEDS_REPORT}.md") as out:
        out.write(f"# {title}\n\n{PERCENT_NOTE}; std: sample std over seeds.\n\n")
        out.write(markdown_table(header, rows))
    with atomic_write(out_dir / f"{SEEDS_REPORT}.json") as out:
        json.dump({"seeds": seeds, "means": list(means)}, out, indent=2)
    return rows
