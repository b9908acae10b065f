"""Ensembles: emotion posteriors averaged over the models of a fold's seeds, or over systems.

A recipe's plan with several seeds trains every fold once per seed; ``speecheq exp score``
then also scores their ensemble: for each fold, the ``hyp/utt2emo.post`` posteriors of its
seeds' decodes are averaged, and the class of highest mean posterior is the hypothesis
(``<exp>/ensemble/<fold>/decode_test``, reported in ``<exp>/ensemble/scores``). It costs no
training, but as many models at inference as there are seeds, so its figures are those of an
ensemble, not of a single model.

``speecheq exp fuse OUT SYSTEM...`` fuses whole systems the same way (late fusion): each
system is a folder of ``<fold>/decode_test`` directories with posteriors (a seed of a recipe's
plan, its ensemble, or the classic baseline, whose posteriors are calibrated), and every fold
they all decoded is scored from the weighted mean of their posteriors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speecheq.errors import SpeechEQError
from speecheq.experiments.plan import Plan
from speecheq.fileio import atomic_write, read_table, write_table
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.scores import Report, aggregate

ENSEMBLE = "ensemble"
POSTERIORS = "utt2emo.post"


def average_decodes(
    decode_dirs: Sequence[Path], out_dir: Path, weights: Sequence[float] | None = None
) -> None:
    """Write the decode directory of the averaged emotion posteriors of ``decode_dirs`` (the
    same test set decoded by several models; ``weights``: of each, else equal):
    ``hyp/utt2emo``, ``hyp/utt2emo.post``, and the references (emotions, genders) and
    classes of the first."""
    shares = np.asarray(weights if weights is not None else [1.0] * len(decode_dirs), float)
    shares = shares / shares.sum()
    first = decode_dirs[0]
    classes = (first / "classes").read_text(encoding="utf-8").split()
    total: dict[str, np.ndarray] = {}
    for decode_dir, share in zip(decode_dirs, shares, strict=True):
        if (decode_dir / "classes").read_text(encoding="utf-8").split() != classes:
            raise SpeechEQError(f"{decode_dir}: other classes than {first}; no ensemble")
        posteriors = read_table(decode_dir / "hyp" / POSTERIORS)
        if total and set(posteriors) != set(total):
            raise SpeechEQError(f"{decode_dir}: other utterances than {first}; no ensemble")
        for utt, text in posteriors.items():
            values = np.array(text.split(), dtype=np.float64)
            if len(values) != len(classes):
                raise SpeechEQError(
                    f"{decode_dir}/hyp/{POSTERIORS}: '{utt}' has {len(values)} posteriors, "
                    f"expected {len(classes)}"
                )
            total[utt] = total.get(utt, 0.0) + share * values
    mean = total
    write_table(out_dir / "hyp" / "utt2emo", {u: classes[int(p.argmax())] for u, p in mean.items()})
    write_table(
        out_dir / "hyp" / POSTERIORS, {u: " ".join(f"{v:.4f}" for v in p) for u, p in mean.items()}
    )
    write_table(out_dir / "ref" / "utt2emo", read_table(first / "ref" / "utt2emo"))
    if (first / "ref" / "utt2gender").is_file():  # the emotion UA per gender
        write_table(out_dir / "ref" / "utt2gender", read_table(first / "ref" / "utt2gender"))
    with atomic_write(out_dir / "classes") as out:
        out.writelines(f"{name}\n" for name in classes)


def ensemble_report(plan: Plan, exp_dir: Path) -> Report | None:
    """Average each fold's seeds (a folds plan of two or more seeds whose decodes have
    posteriors) into ``exp_dir/ensemble``; return the ensemble's report, or None."""
    seeds = plan.summary.get("seeds") or []
    folds: dict[str, list[Path]] = {}
    for run in plan.runs:
        _, _, fold = run.name.partition("/")
        folds.setdefault(fold, []).append(run.decode_dir("test"))
    decodes = [decode_dir for dirs in folds.values() for decode_dir in dirs]
    if len(seeds) < 2 or not all((d / "hyp" / POSTERIORS).is_file() for d in decodes):
        return None
    out = exp_dir / ENSEMBLE
    decoded = []
    for fold, decode_dirs in folds.items():
        average_decodes(decode_dirs, out / fold / "decode_test")
        decoded.append(read_decode_dir(out / fold / "decode_test", fold))
    report = aggregate(decoded, f"{plan.summary['name']}: ensemble of {len(seeds)} seeds")
    seed_list = ", ".join(map(str, seeds))
    report.notes.extend(
        [*plan.reports[0].notes, f"each fold's emotion posteriors averaged over seeds {seed_list}"]
    )
    return report


def fuse_systems(systems: Sequence[Path], out: Path, weights: Sequence[float] | None) -> Report:
    """Late fusion: every fold decoded (with posteriors) by each of ``systems`` scored from
    their posteriors' weighted mean, into ``out/<fold>/decode_test``; the report over folds."""
    if len(systems) < 2:
        raise SpeechEQError("fusion needs two systems or more")
    if weights is not None and (len(weights) != len(systems) or min(weights) < 0):
        raise SpeechEQError(f"--weights: give {len(systems)} non-negative weights, one a system")
    if weights is not None and sum(weights) <= 0:
        raise SpeechEQError("--weights: at least one weight must be positive")
    folds = [
        {p.parents[2].name for p in system.glob(f"*/decode_test/hyp/{POSTERIORS}")}
        for system in systems
    ]
    common = sorted(set.intersection(*folds))
    if not common:
        raise SpeechEQError(
            f"{', '.join(map(str, systems))}: no fold is decoded with posteriors "
            f"(<fold>/decode_test/hyp/{POSTERIORS}) in all of them"
        )
    decoded = []
    for fold in common:
        decode_dir = out / fold / "decode_test"
        average_decodes([system / fold / "decode_test" for system in systems], decode_dir, weights)
        decoded.append(read_decode_dir(decode_dir, fold))
    report = aggregate(decoded, f"{out.name}: fusion of {len(systems)} systems")
    shares = ", ".join(
        f"{system} ({weight:g})"
        for system, weight in zip(systems, weights or [1] * len(systems), strict=True)
    )
    report.notes.append(f"emotion posteriors averaged over {shares}; folds {', '.join(common)}")
    return report
