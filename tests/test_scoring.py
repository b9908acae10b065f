"""Scoring of decode directories: metrics, derived scales, folds, reports, errors and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk
from typer.testing import CliRunner

from speecheq.cli.main import app
from speecheq.errors import SpeechEQError
from speecheq.fileio import write_table
from speecheq.metrics import concordance_cc, pearson, token_error_rate
from speecheq.scoring.decode_dir import read_decode_dir
from speecheq.scoring.report import markdown_report, write_report
from speecheq.scoring.scores import aggregate, score_fold

CLASSES = ("neutral", "happy", "angry", "sad")


def write_decode_dir(
    path: Path,
    tables: dict[str, tuple[dict[str, str], dict[str, str]]],
    classes: tuple[str, ...] = CLASSES,
) -> Path:
    """A decode directory with ``classes`` and, per table name, its (ref, hyp) contents."""
    path.mkdir(parents=True)
    (path / "classes").write_text("".join(f"{name}\n" for name in classes))
    for name, (ref, hyp) in tables.items():
        write_table(path / "ref" / name, ref)
        write_table(path / "hyp" / name, hyp)
    return path


def emotions(path: Path, pairs: list[tuple[str, str]], classes: tuple[str, ...] = CLASSES) -> Path:
    """A decode directory with only utt2emo, from (reference, hypothesis) pairs."""
    ref = {f"u{i:03d}": r for i, (r, _) in enumerate(pairs)}
    hyp = {f"u{i:03d}": h for i, (_, h) in enumerate(pairs)}
    return write_decode_dir(path, {"utt2emo": (ref, hyp)}, classes)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_category_scores_match_scikit_learn(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = list(rng.choice(CLASSES, size=50))
    # The hypothesis never says 'sad' (a class absent from it) and is right about half the time.
    hyp = [r if rng.random() < 0.5 else str(rng.choice(CLASSES[:3])) for r in ref]
    hyp = [h if h != "sad" else "angry" for h in hyp]
    fold = score_fold(read_decode_dir(emotions(tmp_path / "d", list(zip(ref, hyp, strict=True)))))
    assert fold.metrics["emotion WA"] == pytest.approx(sk.accuracy_score(ref, hyp))
    assert fold.metrics["emotion UA"] == pytest.approx(sk.balanced_accuracy_score(ref, hyp))
    assert fold.metrics["emotion F1"] == pytest.approx(sk.f1_score(ref, hyp, average="macro"))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        ref, hyp, labels=list(CLASSES), zero_division=0
    )
    scores = fold.scales["emotion"]
    assert [s.precision for s in scores.per_class.values()] == pytest.approx(precision)
    assert [s.recall for s in scores.per_class.values()] == pytest.approx(recall)
    assert [s.f1 for s in scores.per_class.values()] == pytest.approx(f1)
    assert [s.support for s in scores.per_class.values()] == list(support)
    assert scores.confusion == sk.confusion_matrix(ref, hyp, labels=list(CLASSES)).tolist()


def test_ccc_pearson_and_mae_of_dimensions(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    ref = rng.uniform(1, 5, size=(40, 3))
    hyp = 0.6 * ref + rng.normal(0.5, 0.4, size=(40, 3))
    table = {
        name: {f"u{i:02d}": " ".join(f"{x:.6f}" for x in row) for i, row in enumerate(values)}
        for name, values in (("ref", ref), ("hyp", hyp))
    }
    ref, hyp = np.round(ref, 6), np.round(hyp, 6)
    fold = score_fold(
        read_decode_dir(write_decode_dir(tmp_path / "d", {"utt2avd": (table["ref"], table["hyp"])}))
    )
    for column, dimension in enumerate(("arousal", "valence", "dominance")):
        x, y = ref[:, column], hyp[:, column]
        ccc = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        assert fold.metrics[f"{dimension} CCC"] == pytest.approx(ccc)
        assert fold.metrics[f"{dimension} r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
        assert fold.metrics[f"{dimension} MAE"] == pytest.approx(np.abs(x - y).mean())
    assert concordance_cc(ref[:, 0], ref[:, 0]) == pytest.approx(1.0)
    assert concordance_cc([2.0, 2.0], [2.0, 2.0]) == 0.0 and pearson([1.0, 1.0], [1.0, 2.0]) == 0.0


def test_token_error_rate_on_hand_made_sequences(tmp_path: Path) -> None:
    assert token_error_rate([["a", "b", "c"]], [["a", "x", "c", "d"]]) == pytest.approx(2 / 3)
    ref = {"u1": "n i h ao", "u2": "x ie x ie", "u3": "z ai"}
    # u1: one substitution; u2: two deletions; u3: decoded to nothing, two deletions.
    hyp = {"u1": "n i h a", "u2": "x ie", "u3": ""}
    fold = score_fold(read_decode_dir(write_decode_dir(tmp_path / "d", {"tokens": (ref, hyp)})))
    assert fold.metrics == {"phone TER": pytest.approx(5 / 10)}


def test_auxiliary_tasks(tmp_path: Path) -> None:
    tables = {
        "utt2intensity": ({"u1": "0", "u2": "3", "u3": "2"}, {"u1": "1", "u2": "1", "u3": "2"}),
        "utt2gender": ({"u1": "m", "u2": "m", "u3": "f"}, {"u1": "m", "u2": "f", "u3": "f"}),
        "utt2nat": ({"u1": "acted", "u2": "acted"}, {"u1": "acted", "u2": "natural"}),
    }
    fold = score_fold(read_decode_dir(write_decode_dir(tmp_path / "d", tables)))
    assert fold.metrics == pytest.approx(
        {
            "intensity WA": 1 / 3,
            "intensity UA": 1 / 3,
            "intensity MAE": 3 / 3,
            "gender WA": 2 / 3,
            "gender UA": (1 / 2 + 1) / 2,
            "naturalness WA": 1 / 2,
            "naturalness UA": 1 / 2,
        }
    )
    assert fold.utterances == 3


def test_sentiment_scale_maps_both_sides_and_leaves_out_uncovered_classes(tmp_path: Path) -> None:
    classes = ("neutral", "happy", "excited", "angry", "sad", "other")
    pairs = [
        ("happy", "excited"),  # positive -> positive: right at sentiment, wrong at category
        ("excited", "excited"),
        ("angry", "sad"),  # negative -> negative
        ("sad", "neutral"),
        ("neutral", "neutral"),
        ("other", "happy"),  # left out: the reference has no sentiment
        ("angry", "other"),  # left out: the hypothesis has no sentiment
    ]
    fold = score_fold(read_decode_dir(emotions(tmp_path / "d", pairs, classes)))
    sentiment = fold.scales["sentiment"]
    assert sentiment.classes == ["neutral", "positive", "negative"]
    assert sentiment.confusion == [[1, 0, 0], [0, 2, 0], [1, 0, 1]]
    assert sentiment.utterances == 5 and sentiment.left_out == 2
    assert fold.metrics["sentiment WA"] == pytest.approx(4 / 5)
    assert fold.metrics["sentiment UA"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    assert fold.metrics["emotion WA"] == pytest.approx(2 / 7)
    assert fold.scales["emotion"].utterances == 7
    assert any("other has no sentiment" in note and "2 of 7" in note for note in fold.notes)


def three_folds(root: Path) -> list[Path]:
    """Fold 1: 4 of 4 right; fold 2: 2 of 4; fold 3: 0 of 2 (hand-checkable)."""
    return [
        emotions(root / "fold1", [("happy", "happy"), ("sad", "sad")] * 2),
        emotions(root / "fold2", [("happy", "happy"), ("sad", "happy")] * 2),
        emotions(root / "fold3", [("angry", "sad"), ("sad", "angry")]),
    ]


def test_mean_std_over_folds_and_pooled_scores(tmp_path: Path) -> None:
    report = aggregate([read_decode_dir(path) for path in three_folds(tmp_path)], "three")
    assert [fold.metrics["emotion WA"] for fold in report.folds] == [1.0, 0.5, 0.0]
    assert report.mean["emotion WA"] == pytest.approx(0.5)
    assert report.std["emotion WA"] == pytest.approx(0.5)  # sample std: sqrt(0.5 / 2)
    assert report.pooled.metrics["emotion WA"] == pytest.approx(6 / 10)
    # Pooled UA: happy 4/4, sad 2/5 (2 of fold 1, 0 of fold 2, 0 of fold 3), angry 0/1.
    assert report.pooled.metrics["emotion UA"] == pytest.approx((1 + 2 / 5 + 0) / 3)
    pooled = np.array(report.pooled.scales["emotion"].confusion)
    folds = sum(np.array(fold.scales["emotion"].confusion) for fold in report.folds)
    assert (pooled == folds).all() and pooled.sum() == 10
    assert report.pooled.utterances == 10


def test_a_metric_missing_from_some_folds_is_averaged_over_the_others(tmp_path: Path) -> None:
    paths = three_folds(tmp_path)
    gender = ({"u000": "m", "u001": "f"}, {"u000": "m", "u001": "m"})
    write_table(paths[0] / "ref" / "utt2gender", gender[0])
    write_table(paths[0] / "hyp" / "utt2gender", gender[1])
    report = aggregate([read_decode_dir(path) for path in paths], "three")
    assert report.mean["gender WA"] == pytest.approx(0.5) and "gender WA" not in report.std
    assert "gender WA: scored in 1 of 3 folds only" in report.notes


def test_report_files_are_written(tmp_path: Path) -> None:
    report = aggregate([read_decode_dir(path) for path in three_folds(tmp_path)], "three")
    written = write_report(report, tmp_path / "out")
    assert sorted(path.name for path in written) == [
        "confusion_emotion.png",
        "confusion_sentiment.png",
        "scores.json",
        "scores.md",
    ]
    saved = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert saved["pooled"]["metrics"]["emotion WA"] == pytest.approx(0.6)
    assert saved["std"]["emotion WA"] == pytest.approx(0.5)
    assert saved["folds"][1]["scales"]["emotion"]["per_class"]["sad"]["support"] == 2
    assert "ddof=1" in saved["definitions"]["mean ± std"]
    markdown = (tmp_path / "out" / "scores.md").read_text()
    assert markdown == markdown_report(report)
    assert "| mean ± std |  | 50.0 ± 50.0 |" in markdown and "| pooled | 10 | 60.0 |" in markdown
    assert "| sad | 0 | 2 | 1 | 2 |" in markdown  # pooled confusion row of reference 'sad'
    png = (tmp_path / "out" / "confusion_emotion.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_pooling_refuses_folds_with_different_classes(tmp_path: Path) -> None:
    first = emotions(tmp_path / "a", [("happy", "happy")])
    second = emotions(tmp_path / "b", [("happy", "happy")], ("happy", "sad"))
    with pytest.raises(SpeechEQError, match=r"classes .* differ from those of"):
        aggregate([read_decode_dir(first), read_decode_dir(second)], "x")


def test_errors_name_the_directory_file_or_utterance(tmp_path: Path) -> None:
    with pytest.raises(SpeechEQError, match="missing: decode directory does not exist"):
        read_decode_dir(tmp_path / "missing")
    decode = emotions(tmp_path / "d", [("happy", "happy"), ("sad", "angry"), ("sad", "sad")])
    (decode / "hyp" / "utt2emo").rename(tmp_path / "utt2emo.hyp")
    with pytest.raises(SpeechEQError, match="no task to score"):
        read_decode_dir(decode)
    (decode / "hyp").rmdir()
    with pytest.raises(SpeechEQError, match="no 'hyp' folder"):
        read_decode_dir(decode)
    (decode / "hyp").mkdir()
    hyp = decode / "hyp" / "utt2emo"
    hyp.write_text("u000 happy\nu002 sad\n")
    with pytest.raises(
        SpeechEQError, match="reference utterance 'u001' of ref/utt2emo has no hypothesis"
    ):
        read_decode_dir(decode)
    hyp.write_text("u000 happy\nu001\nu002 sad\n")
    with pytest.raises(SpeechEQError, match=r"hyp/utt2emo:2: malformed line"):
        read_decode_dir(decode)
    hyp.write_text("u000 happy\nu001 fear\nu002 sad\n")
    with pytest.raises(SpeechEQError, match=r"hyp/utt2emo:2: 'fear' is not one of the classes"):
        read_decode_dir(decode)
    hyp.write_text("u000 happy\nu001 sad\nu001 sad\n")
    with pytest.raises(SpeechEQError, match=r"hyp/utt2emo:3: duplicate id 'u001'"):
        read_decode_dir(decode)
    (decode / "classes").unlink()
    with pytest.raises(SpeechEQError, match=r"classes: file not found"):
        read_decode_dir(decode)


def test_bad_values_of_other_tables(tmp_path: Path) -> None:
    decode = write_decode_dir(
        tmp_path / "d",
        {"utt2avd": ({"u1": "1 2 3"}, {"u1": "1 2"}), "utt2intensity": ({"u1": "5"}, {"u1": "1"})},
    )
    with pytest.raises(SpeechEQError, match=r"ref/utt2intensity:1: unknown intensity level '5'"):
        read_decode_dir(decode)
    write_table(decode / "ref" / "utt2intensity", {"u1": "2"})
    with pytest.raises(SpeechEQError, match=r"hyp/utt2avd:1: expected three finite numbers"):
        read_decode_dir(decode)


def test_cli_prints_and_writes_the_report(tmp_path: Path) -> None:
    paths = three_folds(tmp_path / "exp")
    out = tmp_path / "scores"
    result = CliRunner().invoke(
        app, ["score", *map(str, paths), "--out-dir", str(out), "--name", "casia"]
    )
    assert result.exit_code == 0, result.output
    assert "casia: 3 fold(s)" in result.stdout
    assert "50.0 ± 50.0" in result.stdout and "fold2" in result.stdout
    assert "confusion matrix (pooled" in result.stdout
    assert json.loads((out / "scores.json").read_text())["name"] == "casia"


def test_cli_error_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    decode = emotions(tmp_path / "d", [("happy", "happy"), ("sad", "sad")])
    (decode / "hyp" / "utt2emo").write_text("u000 happy\n")
    command = "from speecheq.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", command, "score", str(decode)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "reference utterance 'u001' of ref/utt2emo has no hypothesis" in result.stderr
    assert "Traceback" not in result.stderr


def test_reports_show_collapse_gender_gaps_and_calibration(tmp_path: Path) -> None:
    """A model that calls everything 'happy' with 0.9 confidence: its per-class table counts
    the predictions, its UA per gender differs, and ECE is |accuracy - 0.9|."""
    refs = ["happy", "happy", "sad", "sad", "happy", "sad"]
    path = emotions(tmp_path / "fold", [(ref, "happy") for ref in refs], ("happy", "sad"))
    write_table(path / "hyp" / "utt2emo.post", {f"u{i:03d}": "0.9 0.1" for i in range(6)})
    write_table(path / "ref" / "utt2gender", {"u000": "f", "u001": "f", "u002": "f",
                                              "u003": "m", "u004": "m", "u005": "m"})  # fmt: skip
    fold = score_fold(read_decode_dir(path))
    assert fold.metrics["emotion UA[f]"] == pytest.approx(0.5)  # happy 2/2, sad 0/1
    assert fold.metrics["emotion UA[m]"] == pytest.approx(0.5)
    assert fold.metrics["emotion ECE"] == pytest.approx(abs(0.5 - 0.9))
    markdown = markdown_report(aggregate([read_decode_dir(path)], "collapsed"))
    assert "| happy | 50.0 | 100.0 | 66.7 | 3 | 6 |" in markdown
    assert "| sad | 0.0 | 0.0 | 0.0 | 3 | 0 |" in markdown
    assert "emotion ECE" in markdown and "40.0" in markdown
    write_table(path / "hyp" / "utt2emo.post", {f"u{i:03d}": "0.9" for i in range(6)})
    with pytest.raises(SpeechEQError, match="utt2emo.post:1: expected 2 non-negative posteriors"):
        read_decode_dir(path)


def _scores(path: Path, folds: dict[str, float]) -> None:
    path.mkdir(parents=True)
    runs = [{"name": name, "metrics": {"emotion UA": ua}} for name, ua in folds.items()]
    (path / "scores.json").write_text(json.dumps({"folds": runs}))


def test_compare_pairs_runs_on_folds_and_seeds(tmp_path: Path) -> None:
    reference, other, svm = tmp_path / "train", tmp_path / "other", tmp_path / "svm"
    for seed, (a, b) in enumerate([(0.5, 0.6), (0.4, 0.5)]):
        _scores(reference / f"seed{seed}" / "scores", {f"seed{seed}/a": a, f"seed{seed}/b": b})
    for seed, (a, b) in enumerate([(0.6, 0.8), (0.5, 0.6)]):
        _scores(other / f"seed{seed}" / "scores", {f"seed{seed}/a": a, f"seed{seed}/b": b})
    _scores(svm / "scores", {"a": 0.7, "b": 0.75})
    result = CliRunner().invoke(
        app, ["compare", str(reference), str(other), str(svm), "--out-dir", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    rows = {line.split("|")[1].strip(): line for line in result.output.splitlines() if "|" in line}
    # other - reference: 0.1, 0.2, 0.1, 0.1 over 4 (fold, seed) pairs; all higher, so the
    # exact two-sided Wilcoxon p is 2/16; the t interval is 12.5 +- 3.182 * 5 / 2.
    assert "| +12.5 | [+4.5, +20.5] | 0.125 | 4 | 4 |" in rows[str(other)].replace("  ", " ")
    # svm - reference, on folds over the seed-averaged figures: 0.25, 0.2.
    assert "| +22.5 |" in rows[str(svm)] and "| 2 | 2 |" in rows[str(svm)]
    assert "| 50.0 | 7.1 | 7.1 | 4 |" in rows[str(reference)]  # seeds 55, 45; folds 45, 55
    assert (tmp_path / "c" / "paired.csv").read_text().startswith("system,metric,difference")
    missing = CliRunner().invoke(app, ["compare", str(reference), str(tmp_path / "none")])
    assert isinstance(missing.exception, SpeechEQError) and "no scores here" in str(
        missing.exception
    )


def test_tables_print_group_metrics_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    from speecheq.console import print_table

    print_table("scores [seed 0]", ["metric", "value"], [["emotion UA[f]", "47.5"]])
    shown = capsys.readouterr().out
    assert "emotion UA[f]" in shown and "[seed 0]" in shown  # not taken for markup
