"""Systems side by side: each experiment's scores per fold and seed, and paired differences.

An experiment is a folder ``speecheq exp score`` or the SVM baseline wrote: ``scores/scores.json``
(one run per fold), or ``seed<N>/scores/scores.json`` for each seed. Every other system is
paired with the first on the same (fold, seed) runs; against a system without seeds (the SVM)
the seeded one is averaged over its seeds first, so the pairs are the folds. For each metric
the comparison gives the mean difference over the pairs, its 95% confidence interval
(Student's t over the pairs) and the two-sided p-value of the Wilcoxon signed-rank test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from speecheq.errors import SpeechEQError

NO_SEED = -1
"""The seed of a deterministic system's runs (pairs with every seed)."""


def read_scores(exp: Path) -> pd.DataFrame:
    """The per-run metrics of the experiment ``exp``: columns system, seed, fold, metric,
    value (a share in [0, 1] as scored)."""
    seeded = sorted(exp.glob("seed*/scores/scores.json"))
    files = seeded or [exp / "scores" / "scores.json"]
    if not files[0].is_file():
        raise SpeechEQError(
            f"{exp}: no scores here (scores/scores.json or seed<N>/scores/scores.json; score "
            "the experiment with 'speecheq exp score' first)"
        )
    rows = []
    for file in files:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
            folds = report["folds"]
        except (ValueError, KeyError, TypeError):
            raise SpeechEQError(f"{file}: not a scores file of 'speecheq score'") from None
        seed_dir = re.fullmatch(r"seed(\d+)", file.parents[1].name) if seeded else None
        for fold in folds:  # a plan's seed names its folds (seed0/fold1); a fusion's, its folder
            match = re.fullmatch(r"(?:seed(\d+)/)?(.+)", fold["name"] or "all")
            assert match is not None
            seed_name = match[1] or (seed_dir[1] if seed_dir else None)
            seed = int(seed_name) if seed_name is not None else NO_SEED
            for metric, value in fold["metrics"].items():
                rows.append((str(exp), seed, match[2], metric, float(value)))
    return pd.DataFrame(rows, columns=["system", "seed", "fold", "metric", "value"])


def summary(scores: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per system and metric: the mean over seeds of each seed's mean over folds, the std of
    those seed means, and the std over folds of the seed-averaged fold figures."""
    chosen = scores[scores.metric.isin(metrics)].assign(
        system=lambda frame: pd.Categorical(frame.system, list(dict.fromkeys(frame.system))),
        metric=lambda frame: pd.Categorical(frame.metric, list(metrics)),
    )
    seed_means = chosen.groupby(["system", "metric", "seed"], observed=True).value.mean()
    fold_means = chosen.groupby(["system", "metric", "fold"], observed=True).value.mean()
    table = pd.DataFrame(
        {
            "mean": seed_means.groupby(["system", "metric"], observed=True).mean(),
            "std_seeds": seed_means.groupby(["system", "metric"], observed=True).std(),
            "std_folds": fold_means.groupby(["system", "metric"], observed=True).std(),
            "runs": chosen.groupby(["system", "metric"], observed=True).value.count(),
        }
    )
    return table.reset_index()


def paired(scores: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Each system against the first, per metric: mean difference over the (fold, seed) pairs,
    its 95% interval, the Wilcoxon signed-rank p-value, and how many pairs."""
    from scipy import stats

    systems = list(dict.fromkeys(scores.system))
    reference = scores[scores.system == systems[0]]
    rows = []
    for other in systems[1:]:
        for metric in metrics:
            pairs = _pairs(reference, scores[scores.system == other], metric)
            if pairs.empty:
                continue
            diff = (pairs.value_other - pairs.value_ref).to_numpy()
            mean, n = float(diff.mean()), len(diff)
            spread = diff.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
            half = float(stats.t.ppf(0.975, n - 1) * spread) if n > 1 else np.nan
            p = float(stats.wilcoxon(diff).pvalue) if n > 1 and np.any(diff != 0) else 1.0
            wins = int((diff > 0).sum())
            rows.append((other, metric, mean, mean - half, mean + half, p, n, wins))
    columns = ["system", "metric", "difference", "ci_low", "ci_high", "p_wilcoxon", "pairs", "wins"]
    return pd.DataFrame(rows, columns=columns)


def _pairs(reference: pd.DataFrame, other: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The two systems' runs of ``metric`` matched on fold and seed, or on fold alone (the
    seeded side averaged over its seeds) where one side has no seeds."""
    ref = reference[reference.metric == metric][["fold", "seed", "value"]]
    oth = other[other.metric == metric][["fold", "seed", "value"]]
    if (ref.seed == NO_SEED).all() != (oth.seed == NO_SEED).all():
        ref = ref.groupby("fold", as_index=False).value.mean()
        oth = oth.groupby("fold", as_index=False).value.mean()
        return ref.merge(oth, on="fold", suffixes=("_ref", "_other"))
    return ref.merge(oth, on=["fold", "seed"], suffixes=("_ref", "_other"))


def markdown(summary_table: pd.DataFrame, paired_table: pd.DataFrame, reference: str) -> str:
    """Both tables as markdown, figures in percent."""
    lines = [
        "| system | metric | mean | ± seeds | ± folds | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in summary_table.itertuples():
        lines.append(
            f"| {row.system} | {row.metric} | {_pct(row.mean)} | {_pct(row.std_seeds)} | "
            f"{_pct(row.std_folds)} | {row.runs} |"
        )
    if not paired_table.empty:
        lines += [
            "",
            f"Paired with {reference} on the same folds and seeds (against a system without "
            "seeds, on folds, over the seed-averaged figures); 95% interval of the mean "
            "difference (t), Wilcoxon signed-rank p:",
            "",
            "| system | metric | difference | 95% interval | p | pairs | higher in |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: |",
        ]
        for row in paired_table.itertuples():
            lines.append(
                f"| {row.system} | {row.metric} | {_pct(row.difference, signed=True)} | "
                f"[{_pct(row.ci_low, signed=True)}, {_pct(row.ci_high, signed=True)}] | "
                f"{row.p_wilcoxon:.3f} | {row.pairs} | {row.wins} |"
            )
    return "\n".join(lines) + "\n"


def _pct(value: float, signed: bool = False) -> str:
    if value is None or np.isnan(value):
        return ""
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
