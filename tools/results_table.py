"""The README's results table across recipes, from the scores their runs wrote.

For each recipe under ``egs/`` with scored experiments: the recipe's system (the network fused
with the classic baseline's SVM, ``exp/train_fused_<set>``, stage 5), its network alone
(``exp/train``) and the best classic baseline (``exp/svm_<set>``): emotion UA in %, the mean over
seeds of each seed's fold mean, ± the seeds' std (one seed: ± the folds' std). A recipe with a
RESULTS.md but no scored ``exp/train`` (a cross-corpus plan) is listed with a link only.
Prints the table; ``--write`` replaces the one in README.md (between its ``results-table``
markers).

    tools/venv/bin/python tools/results_table.py [--write]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from speecheq.errors import SpeechEQError
from speecheq.scoring.compare import read_scores, summary

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results-table: begin -->", "<!-- results-table: end -->"


@dataclass(frozen=True)
class Figure:
    """An experiment's emotion UA: its mean, as shown (with its ±), and its folds."""

    mean: float
    shown: str
    folds: int


def figure(exp: Path) -> Figure | None:
    """The emotion UA of a scored experiment, or None when it has no scores."""
    try:
        scores = read_scores(exp)
    except SpeechEQError:
        return None
    row = summary(scores, ["emotion UA"]).iloc[0]
    seeds, folds = scores.seed.nunique(), scores.fold.nunique()
    spread = row.std_seeds if seeds > 1 else row.std_folds
    unit = f"{seeds} seeds" if seeds > 1 else f"{folds} folds"
    shown = f"{100 * row['mean']:.1f} ± {100 * spread:.1f} ({unit})"
    return Figure(100 * row["mean"], shown, folds)


def best(exps: list[Path]) -> tuple[str, str] | None:
    """The best-scoring of ``exps``: its shown figure and its name."""
    scored = [(found, exp.name) for exp in exps if (found := figure(exp)) is not None]
    if not scored:
        return None
    found, name = max(scored, key=lambda item: item[0].mean)
    return found.shown, name


def rows() -> list[str]:
    lines = [
        "| recipe | folds | the recipe's system: network + SVM fusion | its network alone "
        "| best classic baseline | details |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for recipe in sorted(p for p in (ROOT / "egs").iterdir() if (p / "RESULTS.md").is_file()):
        exp = recipe / "exp"
        network = figure(exp / "train")
        link = f"[RESULTS.md](egs/{recipe.name}/RESULTS.md)"
        if network is None:
            lines.append(f"| `{recipe.name}` | | | | | {link} (its own tables) |")
            continue
        fused = best(sorted(exp.glob("train_fused_*")))
        svm = best(sorted(exp.glob("svm_*")))
        shown = [
            f"**{fused[0]}** ({fused[1].removeprefix('train_fused_')} SVM)" if fused else "",
            network.shown,
            f"{svm[0]} ({svm[1].removeprefix('svm_')})" if svm else "",
        ]
        lines.append(f"| `{recipe.name}` | {network.folds} | {' | '.join(shown)} | {link} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    table = "\n".join(rows())
    if not parser.parse_args().write:
        print(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} markers")
    readme.write_text(pattern.sub(f"{BEGIN}\n{table}\n{END}", text), encoding="utf-8")
    print(f"wrote the table into {readme}")


if __name__ == "__main__":
    main()
