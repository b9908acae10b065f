"""Benchmark how the classic baseline's SVM fits grow with the corpus.

Usage: tools/venv/bin/python tools/bench_svm_scale.py FOLD_DIR FUNCTIONALS CONFIG [--copies 1 4 8]

A recipe's fold (``data/folds/<fold>`` after stage 4), functionals (``data/functionals_<set>``)
and training config (``conf/train.yaml``). The fold's train and valid utterances, standardised
per speaker as ``speecheq baseline svm`` does, are copied K times (each copy but the first with
Gaussian noise of 0.5 standard deviations, so that no two rows are the same), and the baseline's
SVM is fitted once at each ``C`` of its grid on each size. Prints the seconds of each fit and
their sum, side by side for each K, and the growth of the sum against one copy: a fold of
``speecheq baseline svm`` fits the whole grid once per inner fold (at most 10), so the sum times
the inner folds is about a fold's search on a corpus of that size.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from speecheq.baseline.svm import GRID, Labelled, linear_svm
from speecheq.config import load_config
from speecheq.console import print_table
from speecheq.data.datadir import DataDir
from speecheq.labels import ClassMap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fold_dir", type=Path)
    parser.add_argument("functionals", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4, 8], help="[1 4 8]")
    args = parser.parse_args()
    labels = load_config(args.config).labels
    parts = [DataDir.load(args.fold_dir / part) for part in ("train", "valid")]
    train = Labelled.load(parts, args.functionals, ClassMap.build(labels.classes, labels.merge))
    rng = np.random.default_rng(0)
    warnings.simplefilter("ignore", ConvergenceWarning)  # the grid's largest C may not converge
    fits: list[tuple[int, list[float]]] = []  # utterances and seconds per C, for each size
    for copies in args.copies:
        noisy = [
            train.values + 0.5 * rng.standard_normal(train.values.shape) for _ in range(1, copies)
        ]
        values = np.concatenate([train.values, *noisy])
        classes = np.concatenate([train.classes] * copies)
        seconds = []
        for c in GRID:
            start = time.perf_counter()
            linear_svm().set_params(C=c).fit(values, classes)
            seconds.append(time.perf_counter() - start)
        fits.append((len(values), seconds))
    first_sum = sum(fits[0][1])
    columns = [
        [str(size), *(f"{s:.1f}" for s in seconds), f"{sum(seconds):.1f}",
         f"{sum(seconds) / first_sum:.1f}x"]
        for size, seconds in fits
    ]  # fmt: skip
    names = ["utterances", *(f"C={c:g} s" for c in GRID), "sum s", "sum growth"]
    rows = [[name, *(column[i] for column in columns)] for i, name in enumerate(names)]
    print_table(
        f"SVM fits, {train.values.shape[1]} functionals",
        ["", *(f"{k} x" for k in args.copies)],
        rows,
    )


if __name__ == "__main__":
    main()
