"""The learning curve of Latif et al. (2020) as a plan: emotion labels kept for a share of the
training utterances, supervised-only against semi-supervised, within-corpus and cross-corpus.

1. The source corpus is split into speaker folds (``num_folds``; default one per speaker), each
   with a valid set drawn from its training speakers; the target corpus (optional) into two
   speaker halves, fold 1 testing one and fold 2 the other. Source fold ``k`` is paired with
   target fold ``(k - 1) % 2 + 1``; no test speaker of the target may be a training or valid
   speaker of its source fold (checked).
2. Each source fold's training set keeps, for every fraction, the emotion labels of that share
   (:func:`speecheq.data.ops.label_fraction`: stratified by speaker and class, nested across
   fractions); the other utterances are kept without emotion labels (``withheld``).
3. A run per fold, fraction and mode: ``supervised`` (emotion + gender + speaker on the
   labeled share) and ``semi`` (the same + the adversarial autoencoder, with the withheld
   utterances and, with a target, the target fold's training half (its train and valid parts)
   as unlabeled data). Every run takes about as many optimizer steps as a supervised run on all
   the labels (``optim.epochs`` divided by the fraction); a semi-supervised run's batches hold
   as many labeled utterances as a supervised run's, plus ``unlabeled_ratio`` times as many
   unlabeled ones. The valid set keeps all its labels at every fraction.
4. Each run decodes its source fold's test set (``within``) and its paired target fold's test
   half (``cross``); the summary is the table of UA and WA (mean ± std over folds) per fraction,
   mode and test, in ``<out>/results.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from speecheq.config import TrainConfig, load_config
from speecheq.console import print_table
from speecheq.data.datadir import DataDir
from speecheq.data.folds import save_folds, split_folds
from speecheq.data.ops import label_fraction
from speecheq.errors import SpeechEQError
from speecheq.experiments.plan import Plan, Report, Run
from speecheq.fileio import atomic_write
from speecheq.scoring.report import markdown_table
from speecheq.scoring.scores import Report as Scores

MODES: dict[str, tuple[str, ...]] = {
    "supervised": ("emotion", "gender", "speaker"),
    "semi": ("emotion", "gender", "speaker", "aae"),
}
TARGET_FOLDS = 2


def scaled_epochs(epochs: int, fraction: float) -> int:
    """About as many steps at every fraction as ``epochs`` take on all the labels."""
    return max(1, round(epochs / fraction))


def _split(source: Path, out: Path, folds: int | None, valid: float, seed: int) -> list[str]:
    """Speaker folds of ``source`` under ``out`` (written unless there); their names."""
    if not out.is_dir():
        save_folds(
            split_folds(
                DataDir.load(source),
                by="speaker",
                num_folds=folds,
                valid_fraction=valid,
                seed=seed,
            ),
            out,
        )
    return sorted(path.name for path in out.iterdir() if path.is_dir())


def curve_plan(
    source: str | Path,
    out_dir: str | Path,
    config: str | Path,
    *,
    target: str | Path | None = None,
    num_folds: int | None = None,
    valid_fraction: float = 0.1,
    fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    modes: Sequence[str] = tuple(MODES),
    classes: Sequence[str] | None = None,
    unlabeled_ratio: float = 0.5,
    seed: int = 0,
) -> Plan:
    """Write the folds and the label-fraction subsets under ``out_dir/data``; return the plan."""
    out_dir = Path(out_dir)
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise SpeechEQError(f"modes must be among {', '.join(MODES)}, got {', '.join(modes)}")
    if not fractions or not all(0 < fraction <= 1 for fraction in fractions):
        raise SpeechEQError(f"label fractions must be in (0, 1], got {list(fractions)}")
    base = load_config(config)
    data = out_dir / "data"
    source_folds = _split(Path(source), data / "source", num_folds, valid_fraction, seed)
    target_folds = []
    if target is not None:
        target_folds = _split(Path(target), data / "target", TARGET_FOLDS, valid_fraction, seed)
    pairs = {
        fold: target_folds[index % len(target_folds)] if target_folds else None
        for index, fold in enumerate(source_folds)
    }
    _check_speakers(data, pairs)
    for fold in source_folds:
        for fraction in fractions:
            labeled = data / fold / f"f{fraction:g}"
            _subset(data / "source" / fold / "train", labeled, fraction, seed)
    runs = [
        _run(
            mode,
            fraction,
            fold,
            target_fold,
            out_dir,
            config,
            _overrides(mode, fraction, target_fold, base, classes, unlabeled_ratio),
        )
        for mode in modes
        for fraction in fractions
        for fold, target_fold in pairs.items()
    ]
    tests = ["within", "cross"] if target_folds else ["within"]
    reports = [
        Report(
            f"{mode} {fraction:g} {test}",
            str(out_dir / mode / f"f{fraction:g}" / f"scores_{test}"),
            tuple((f"{mode}/f{fraction:g}/{fold}", test) for fold in source_folds),
        )
        for mode in modes
        for fraction in fractions
        for test in tests
    ]
    summary = {
        "modes": list(modes),
        "fractions": list(fractions),
        "tests": tests,
        "out_dir": str(out_dir),
    }
    return Plan("curve", runs, reports, summary)


def _overrides(
    mode: str,
    fraction: float,
    target_fold: str | None,
    base: TrainConfig,
    classes: Sequence[str] | None,
    unlabeled_ratio: float,
) -> list[str]:
    """A run's changes of the config: epochs scaled by the fraction, and for a run with
    unlabeled data, the ratio and the batch budget grown by it."""
    overrides = [f"optim.epochs={scaled_epochs(base.optim.epochs, fraction)}"]
    if mode == "semi" and (fraction < 1 or target_fold is not None):
        frames = round(base.batching.max_frames * (1 + unlabeled_ratio))
        overrides += [
            f"batching.unlabeled_ratio={unlabeled_ratio}",
            f"batching.max_frames={frames}",
        ]
    if classes:
        overrides.append(f"labels.classes=[{', '.join(classes)}]")
    return overrides


def _run(
    mode: str,
    fraction: float,
    fold: str,
    target_fold: str | None,
    out_dir: Path,
    config: str | Path,
    overrides: Sequence[str],
) -> Run:
    data = out_dir / "data"
    unlabeled = []
    if mode == "semi":
        if fraction < 1:
            unlabeled.append(str(data / fold / f"f{fraction:g}" / "withheld"))
        if target_fold is not None:  # the whole training half: its train and valid parts
            unlabeled += [str(data / "target" / target_fold / part) for part in ("train", "valid")]
    tests = {"within": str(data / "source" / fold / "test")}
    if target_fold is not None:
        tests["cross"] = str(data / "target" / target_fold / "test")
    name = f"{mode}/f{fraction:g}/{fold}"
    return Run(
        name=name,
        exp_dir=str(out_dir / name),
        train=str(data / fold / f"f{fraction:g}" / "train"),
        valid=str(data / "source" / fold / "valid"),
        tests=tests,
        config=str(config),
        tasks=MODES[mode],
        overrides=tuple(overrides),
        unlabeled=tuple(unlabeled),
    )


def _check_speakers(data: Path, pairs: dict[str, str | None]) -> None:
    """No test speaker of a target fold may be a training or valid speaker of its source fold."""
    for fold, target_fold in pairs.items():
        if target_fold is None:
            continue
        seen = {
            spk
            for part in ("train", "valid")
            for spk in DataDir.load(data / "source" / fold / part).speakers
        }
        leaked = seen & set(DataDir.load(data / "target" / target_fold / "test").speakers)
        if leaked:
            raise SpeechEQError(
                f"target {target_fold} tests speakers that source {fold} trains on: "
                f"{', '.join(sorted(leaked))}"
            )


def _subset(train: Path, out: Path, fraction: float, seed: int) -> None:
    """``out/train`` with the labels of ``fraction`` of ``train``; ``out/withheld`` the rest."""
    if (out / "train" / "utt2spk").is_file():
        return
    labeled, withheld = label_fraction(DataDir.load(train), fraction, seed)
    if fraction < 1:
        withheld.save(out / "withheld")
    labeled.save(out / "train")


def summarise_curve(plan: Plan, plan_dir: Path, reports: Sequence[Scores]) -> None:
    """The table of UA and WA per fraction, mode and test; printed and in ``results.md``."""
    modes, fractions, tests = (plan.summary[key] for key in ("modes", "fractions", "tests"))
    by_name = {report.name: report for report in reports}
    header = ["labels kept"] + [
        f"{test} {mode} {metric}" for test in tests for metric in ("UA", "WA") for mode in modes
    ]
    rows = []
    for fraction in fractions:
        row = [f"{fraction:.0%}"]
        for test in tests:
            for metric in ("UA", "WA"):
                for mode in modes:
                    report = by_name[f"{mode} {fraction:g} {test}"]
                    key = f"emotion {metric}"
                    mean, std = report.mean[key], report.std.get(key)
                    row.append(f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}"))
        rows.append(row)
    out_dir = Path(plan.summary["out_dir"])
    title = f"{out_dir}: emotion UA and WA in % (mean ± std over folds)"
    print_table(title, header, rows)
    with atomic_write(out_dir / "results.md") as out:
        out.write(f"# {title}\n\n" + markdown_table(header, rows))
