"""``speecheq score``: score decode directories (stage 5): per fold, mean ± std, pooled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from speecheq.console import note, progress_bar
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.report import print_report, write_report
from speecheq.scoring.scores import DEFINITIONS, aggregate


def score_command(
    decode_dirs: Annotated[
        list[Path], typer.Argument(help="Decode directories, one per fold or test set.")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Write `scores.json`, `scores.md` and `confusion_<scale>.png` here."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="The report's title (default: the decode directories' common path)."),
    ] = None,
) -> None:
    common = os.path.commonpath([path.resolve() for path in decode_dirs])
    decoded = []
    with progress_bar("reading decode directories", len(decode_dirs)) as advance:
        for path in decode_dirs:
            fold_name = os.path.relpath(path.resolve(), common) if len(decode_dirs) > 1 else None
            decoded.append(read_decode_dir(path, fold_name))
            advance(1)
    default_name = str(decode_dirs[0]) if len(decode_dirs) == 1 else os.path.relpath(common)
    report = aggregate(decoded, name or default_name)
    print_report(report)
    if out_dir is not None:
        for path in write_report(report, out_dir):
            note(f"wrote {path}")


score_command.__doc__ = "\n\n".join(
    [
        "Score decode directories written by 'speecheq predict' (stage 5).",
        "Each directory is one fold or test set. A task is scored when both `ref/<file>` and "
        "`hyp/<file>` exist (each task's decode table: utt2emo, utt2intensity, tokens, ...), "
        "over the utterances of "
        "`ref/<file>`. Prints a summary (a row per fold, mean ± std and pooled with several "
        "folds), and per-class scores and confusion matrices at every category scale.",
        "\n".join(f"- **{term}**: {text}." for term, text in DEFINITIONS.items()),
    ]
)


def compare_command(
    experiments: Annotated[
        list[Path],
        typer.Argument(
            help="Experiment folders (exp/train, exp/svm_fbank ...); the first is "
            "the reference the others are paired with."
        ),
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option(help="A metric to compare (repeat; default: emotion UA, WA and F1)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Also write compare.md, summary.csv and paired.csv here."),
    ] = None,
) -> None:
    """Systems side by side (mean, ± seeds, ± folds) and each paired with the first on the same
    folds and seeds: the mean difference, its 95% interval and a Wilcoxon signed-rank test."""
    import pandas as pd

    from speecheq.errors import SpeechEQError
    from speecheq.fileio import atomic_write
    from speecheq.scoring.compare import markdown, paired, read_scores, summary

    if len(experiments) < 2:
        raise SpeechEQError("compare needs two experiments or more")
    scores = pd.concat([read_scores(exp) for exp in experiments], ignore_index=True)
    found = set(scores.metric)
    metrics = metric or [
        name for name in ("emotion UA", "emotion WA", "emotion F1") if name in found
    ]
    missing = [name for name in metrics or ["emotion UA"] if name not in found]
    if missing:
        known = ", ".join(sorted(set(scores.metric)))
        raise SpeechEQError(f"no experiment has the metric {missing[0]!r} (known: {known})")
    table, pairs = summary(scores, metrics), paired(scores, metrics)
    text = markdown(table, pairs, str(experiments[0]))
    print(text, end="")
    if out_dir is not None:
        for name, content in (
            ("compare.md", text),
            ("summary.csv", table.to_csv(index=False)),
            ("paired.csv", pairs.to_csv(index=False)),
        ):
            with atomic_write(out_dir / name) as out:
                out.write(content)
        note(f"wrote {out_dir}/compare.md, summary.csv, paired.csv")
