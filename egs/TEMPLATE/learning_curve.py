#!/usr/bin/env python3
"""The learning curve of Latif et al. (2020): emotion labels kept for a share of the training
utterances, supervised-only against semi-supervised, within-corpus and cross-corpus.

Run it from a recipe folder after stages 1-2 (features), with the recipe's PATH set up::

    . ./path.sh
    python3 ../TEMPLATE/learning_curve.py --source data/all --out exp/latif \\
        [--target ../other/data/all] [--num-folds K] [--fractions 0.1,0.25,0.5,1]

1. ``speecheq data split``: the source corpus into speaker folds (``--num-folds``; default
   one per speaker), each with a valid set drawn from its training speakers; the target corpus
   (``--target``, optional) into two speaker halves, ``fold1`` testing one and ``fold2`` the
   other. Source fold ``k`` is paired with target fold ``(k - 1) % 2 + 1``; no test speaker of
   the target may be a training or valid speaker of its source fold (checked).
2. ``speecheq data subset --label-fraction F``: each source fold's training set, for every
   fraction, keeping the emotion labels of that share (stratified by speaker and class, nested
   across fractions); the other utterances are written without emotion labels.
3. ``speecheq train``, for every fold and fraction, in two modes:

   - ``supervised``: emotion + gender + speaker on the labeled share;
   - ``semi``: the same + the adversarial autoencoder (``aae``), with ``--unlabeled-dir`` the
     withheld utterances and, with a target, the target fold's training half (its labels are
     not read).

   Every run takes about as many optimizer steps as a supervised run on all the labels:
   ``optim.epochs`` is the config's divided by the fraction. A semi-supervised run's batches
   hold as many labeled utterances as a supervised run's, plus ``--unlabeled-ratio`` times as
   many unlabeled ones (``batching.max_frames`` grows by that factor). The valid set keeps all
   its labels at every fraction (it chooses the epoch; the same for both modes).
4. ``speecheq predict`` on the source fold's test set (within-corpus) and on the paired
   target fold's test half (cross-corpus); ``speecheq score`` over the folds of every
   (mode, fraction, test); then the table of UA and WA (mean ± std over folds, in %) in
   ``OUT/results.md``.

A run with a checkpoint is resumed (``speecheq train --resume``), so the script can be run
again after an interruption: a finished run has no epoch left to train.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from speecheq.console import note, print_table
from speecheq.data.datadir import DataDir
from speecheq.fileio import atomic_write

MODES = {"supervised": "emotion,gender,speaker", "semi": "emotion,gender,speaker,aae"}
TARGET_FOLDS = 2


@dataclass(frozen=True)
class Run:
    """One training: a mode, a label fraction, a source fold and its paired target fold."""

    mode: str
    fraction: float
    fold: str
    target_fold: str | None

    @property
    def name(self) -> str:
        return f"{self.mode}/f{self.fraction:g}/{self.fold}"


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    data = out / "data"
    source_folds = split(args.source, data / "source", args.num_folds, args.valid_fraction, args)
    target_folds = []
    if args.target:
        target_folds = split(args.target, data / "target", TARGET_FOLDS, 0.0, args)
    runs = [
        Run(mode, fraction, fold, target_folds[index % len(target_folds)] if target_folds else None)
        for mode in args.modes
        for fraction in args.fractions
        for index, fold in enumerate(source_folds)
    ]
    check_speakers(data, runs)
    base = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
    epochs = base.get("optim", {}).get("epochs", 15)
    print_table(
        f"{out}: {len(runs)} trainings",
        ["mode", "labels kept", "folds", "epochs", "unlabeled data"],
        [
            [
                mode,
                f"{fraction:.0%}",
                len(source_folds),
                scaled_epochs(epochs, fraction),
                unlabeled_text(mode, fraction, bool(target_folds)),
            ]
            for mode in args.modes
            for fraction in args.fractions
        ],
    )
    if args.plan:
        return
    for fold in source_folds:
        for fraction in args.fractions:
            subset(data / "source" / fold / "train", data / fold / f"f{fraction:g}", fraction, args)
    for run in runs:
        train(run, base, epochs, data, out / run.name, args)
    tests = {"within": None, "cross": "target"} if target_folds else {"within": None}
    scores: dict[tuple[str, float, str], dict[str, Any]] = {}
    for mode in args.modes:
        for fraction in args.fractions:
            for test, corpus in tests.items():
                decode_dirs = []
                for run in runs:
                    if (run.mode, run.fraction) != (mode, fraction):
                        continue
                    test_fold = run.fold if corpus is None else run.target_fold
                    test_dir = data / (corpus or "source") / str(test_fold) / "test"
                    decode_dir = out / run.name / f"decode_{test}"
                    run_speecheq(
                        "predict",
                        out / run.name / "model.pt",
                        test_dir,
                        decode_dir,
                        "--device",
                        args.device,
                    )
                    decode_dirs.append(decode_dir)
                score_dir = out / mode / f"f{fraction:g}" / f"scores_{test}"
                run_speecheq(
                    "score",
                    *decode_dirs,
                    "--out-dir",
                    score_dir,
                    "--name",
                    f"{mode} {fraction:g} {test}",
                )
                report = json.loads((score_dir / "scores.json").read_text(encoding="utf-8"))
                scores[(mode, fraction, test)] = report
    write_results(out, args, list(tests), scores)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--source", required=True, help="the corpus trained on (after stage 2)")
    parser.add_argument("--out", required=True, help="where data, runs and results go")
    parser.add_argument(
        "--config",
        default=str(Path(__file__).resolve().parent / "conf" / "latif.yaml"),
        help="training config (default: conf/latif.yaml beside this script)",
    )
    parser.add_argument("--target", help="a corpus tested across (after stage 2, same features)")
    parser.add_argument("--num-folds", type=int, help="source speaker folds [one per speaker]")
    parser.add_argument("--valid-fraction", type=float, default=0.1, help="[0.1]")
    parser.add_argument("--fractions", default="0.1,0.25,0.5,1", help="[0.1,0.25,0.5,1]")
    parser.add_argument("--modes", default="supervised,semi", help="[supervised,semi]")
    parser.add_argument("--classes", help="emotion classes, comma-separated [the config's]")
    parser.add_argument(
        "--unlabeled-ratio", type=float, default=0.5, help="unlabeled per labeled utterance [0.5]"
    )
    parser.add_argument("--seed", type=int, default=0, help="folds and label draws [0]")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda [auto]")
    parser.add_argument("--plan", action="store_true", help="print the plan and stop")
    args = parser.parse_args()
    args.fractions = [float(value) for value in args.fractions.split(",")]
    args.modes = args.modes.split(",")
    unknown = set(args.modes) - set(MODES)
    if unknown or not all(0 < fraction <= 1 for fraction in args.fractions):
        parser.error(f"--modes must be among {', '.join(MODES)}; --fractions in (0, 1]")
    return args


def run_speecheq(*words: object) -> None:
    """Run a speecheq command, shown as it is run; stop the script if it fails."""
    command = ["speecheq", *map(str, words)]
    note(f"$ {shlex.join(command)}")
    if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
        sys.exit(f"failed: {shlex.join(command)}")


def split(
    source: str, out: Path, folds: int | None, valid: float, args: argparse.Namespace
) -> list[str]:
    """Speaker folds of ``source`` under ``out``; their names."""
    if not out.is_dir():
        options = ["--num-folds", folds] if folds else []
        run_speecheq(
            "data",
            "split",
            source,
            out,
            "--by",
            "speaker",
            *options,
            "--valid-fraction",
            valid,
            "--seed",
            args.seed,
        )
    return sorted(path.name for path in out.iterdir() if path.is_dir())


def check_speakers(data: Path, runs: list[Run]) -> None:
    """No test speaker of a target fold may be a training or valid speaker of its source fold."""
    for run in {(run.fold, run.target_fold) for run in runs if run.target_fold}:
        fold, target_fold = run
        seen = {
            spk
            for part in ("train", "valid")
            for spk in DataDir.load(data / "source" / fold / part).speakers
        }
        leaked = seen & set(DataDir.load(data / "target" / str(target_fold) / "test").speakers)
        if leaked:
            sys.exit(
                f"target {target_fold} tests speakers that source {fold} trains on: "
                f"{', '.join(sorted(leaked))}"
            )


def subset(train: Path, out: Path, fraction: float, args: argparse.Namespace) -> None:
    """``out/train`` with the labels of ``fraction`` of ``train``; ``out/withheld`` the rest."""
    if (out / "train" / "utt2spk").is_file():
        return
    withheld = ["--unlabeled-out", out / "withheld"] if fraction < 1 else []
    run_speecheq(
        "data",
        "subset",
        train,
        out / "train",
        "--label-fraction",
        fraction,
        "--seed",
        args.seed,
        *withheld,
    )


def scaled_epochs(epochs: int, fraction: float) -> int:
    """About as many steps at every fraction as ``epochs`` take on all the labels."""
    return max(1, round(epochs / fraction))


def unlabeled_dirs(run: Run, data: Path) -> list[Path]:
    if run.mode != "semi":
        return []
    dirs = [data / run.fold / f"f{run.fraction:g}" / "withheld"] if run.fraction < 1 else []
    if run.target_fold is not None:
        dirs.append(data / "target" / run.target_fold / "train")
    return dirs


def unlabeled_text(mode: str, fraction: float, target: bool) -> str:
    if mode != "semi":
        return "-"
    parts = (["withheld"] if fraction < 1 else []) + (["target half"] if target else [])
    return " + ".join(parts) or "none"


def train(
    run: Run,
    base: dict[str, Any],
    epochs: int,
    data: Path,
    exp: Path,
    args: argparse.Namespace,
) -> None:
    """Train ``run`` into ``exp`` (its own config beside it), resuming from its checkpoint."""
    config = json.loads(json.dumps(base))
    config.setdefault("optim", {})["epochs"] = scaled_epochs(epochs, run.fraction)
    unlabeled = unlabeled_dirs(run, data)
    if unlabeled:
        batching = config.setdefault("batching", {})
        batching["unlabeled_ratio"] = args.unlabeled_ratio
        frames = batching.get("max_frames", 3000)
        batching["max_frames"] = round(frames * (1 + args.unlabeled_ratio))
    if args.classes:
        config.setdefault("labels", {})["classes"] = args.classes.split(",")
    with atomic_write(exp / "train.yaml") as out:
        yaml.safe_dump(config, out, sort_keys=False)
    options = []
    for path in unlabeled:
        options += ["--unlabeled-dir", path]
    run_speecheq(
        "train",
        "--config",
        exp / "train.yaml",
        "--tasks",
        MODES[run.mode],
        "--train-dir",
        data / run.fold / f"f{run.fraction:g}" / "train",
        "--valid-dir",
        data / "source" / run.fold / "valid",
        "--exp-dir",
        exp,
        "--device",
        args.device,
        *options,
    )


def write_results(
    out: Path,
    args: argparse.Namespace,
    tests: list[str],
    scores: dict[tuple[str, float, str], dict[str, Any]],
) -> None:
    """The table of UA and WA per fraction, mode and test, to the screen and results.md."""
    header = ["labels kept"] + [
        f"{test} {mode} {metric}"
        for test in tests
        for metric in ("UA", "WA")
        for mode in args.modes
    ]
    rows = []
    for fraction in args.fractions:
        row = [f"{fraction:.0%}"]
        for test in tests:
            for metric in ("UA", "WA"):
                for mode in args.modes:
                    report = scores[(mode, fraction, test)]
                    key = f"emotion {metric}"
                    mean, std = report["mean"][key], report["std"].get(key)
                    row.append(f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}"))
        rows.append(row)
    print_table(f"{out}: emotion UA and WA in % (mean ± std over folds)", header, rows)
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    with atomic_write(out / "results.md") as handle:
        handle.write("\n".join(lines) + "\n")
    note(f"wrote {out / 'results.md'}")


if __name__ == "__main__":
    main()
