"""Benchmark the classic baseline's SVM folds fitted in parallel against one at a time.

Usage: tools/venv/bin/python tools/bench_svm.py FOLDS_DIR FUNCTIONALS CONFIG [--folds F ...]
[--nj N]

A recipe's folds (``data/folds`` after stage 4), functionals (``data/functionals_<set>``) and
training config (``conf/train.yaml``). Runs ``speecheq baseline svm``'s work (``run_svm``) on
the folds twice, with ``nj=1`` and with ``nj=N`` (default 2), into a scratch folder, and prints
the wall time of each, the speed-up, and whether every fold's chosen ``C``, temperature and
posteriors are the same. Exits 1 when they differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from speecheq.baseline.svm import run_svm
from speecheq.console import print_table


def written(exp_dir: Path, folds: list[str]) -> dict[str, str]:
    """Each fold's ``svm.json`` and posteriors, as text."""
    files = ("svm.json", "decode_test/hyp/utt2emo.post")
    return {
        f"{fold}/{name}": (exp_dir / fold / name).read_text() for fold in folds for name in files
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folds_dir", type=Path)
    parser.add_argument("functionals", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--folds", nargs="*", default=None, help="folds to run (default: all)")
    parser.add_argument("--nj", type=int, default=2, help="folds fitted at a time [2]")
    args = parser.parse_args()
    rows, outputs, one_at_a_time = [], [], None
    with tempfile.TemporaryDirectory() as scratch:
        for nj in (1, args.nj):
            exp_dir = Path(scratch) / f"nj{nj}"
            start = time.perf_counter()
            report = run_svm(
                args.folds_dir, exp_dir, [args.functionals], args.config, args.folds, nj
            )
            seconds = time.perf_counter() - start
            one_at_a_time = one_at_a_time or seconds
            folds = [fold.name for fold in report.folds]
            outputs.append(written(exp_dir, folds))
            ua = 100 * report.mean["emotion UA"]
            speed_up = f"{one_at_a_time / seconds:.2f}x"
            rows.append([str(nj), str(len(folds)), f"{seconds:.1f}", f"{ua:.1f}", speed_up])
    print_table(
        "SVM folds: one at a time and in parallel",
        ["nj", "folds", "wall s", "UA", "speed-up"],
        rows,
    )
    same = outputs[0] == outputs[1]
    print(f"the same C, temperature and posteriors on every fold: {'yes' if same else 'NO'}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
