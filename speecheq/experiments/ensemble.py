"""Ensembles: emotion posteriors averaged over the models of a fold's seeds.

A recipe's plan with several seeds trains every fold once per seed; ``speecheq exp score``
then also scores their ensemble: for each fold, the ``hyp/utt2emo.post`` posteriors of its
seeds' decodes are averaged, and the class of highest mean posterior is the hypothesis
(``<exp>/ensemble/<fold>/decode_test``, reported in ``<exp>/ensemble/scores``). It costs no
training, but as many models at inference as there are seeds, so its figures are those of an
ensemble, not of a single model.
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
REFERENCES = ("ref/utt2emo", "ref/utt2gender", "utt2spk")
"""The tables of references (emotions, genders, speakers) an ensemble or a fusion keeps."""


def write_posteriors(
    out_dir: Path, classes: Sequence[str], posteriors: dict[str, np.ndarray], reference_dir: Path
) -> None:
    """Write a decode directory of emotion ``posteriors`` (utterance -> one per class): its
    ``hyp/utt2emo`` (the class of highest posterior), ``hyp/utt2emo.post``, ``classes``, and
    the reference tables of ``reference_dir`` (emotions, genders, speakers)."""
    hypotheses = {u: classes[int(p.argmax())] for u, p in posteriors.items()}
    write_table(out_dir / "hyp" / "utt2emo", hypotheses)
    write_table(
        out_dir / "hyp" / POSTERIORS,
        {u: " ".join(f"{v:.4f}" for v in p) for u, p in posteriors.items()},
    )
    for table in REFERENCES:
        if (reference_dir / table).is_file():
            write_table(out_dir / table, read_table(reference_dir / table))
    with atomic_write(out_dir / "classes") as out:
        out.writelines(f"{name}\n" for name in classes)


def average_decodes(decode_dirs: Sequence[Path], out_dir: Path) -> None:
    """Write the decode directory of the averaged emotion posteriors of ``decode_dirs`` (the
    same test set decoded by several models)."""
    first = decode_dirs[0]
    classes = (first / "classes").read_text(encoding="utf-8").split()
    total: dict[str, np.ndarray] = {}
    for decode_dir in decode_dirs:
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
            total[utt] = total.get(utt, 0.0) + values / len(decode_dirs)
    write_posteriors(out_dir, classes, total, first)


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
