"""Late fusion of whole systems (``speecheq exp fuse OUT SYSTEM...``).

Each system is a folder of ``<fold>/decode_test`` directories with emotion posteriors: a seed
of a recipe's plan, its ensemble, or the classic baseline. On every fold they all decoded, an
utterance's fused score is the weighted sum of the systems' log posteriors, each first
normalised per speaker: the mean over the speaker's test utterances (the decode directory's
``utt2spk``) is subtracted, class by class. That removes what a system says of the speaker
rather than of the utterance, as the classic baseline's per-speaker z-normalised functionals
do for its input; it assumes a speaker's test utterances span the emotions, as an evaluation
set's do. The fused posteriors are the softmax of the fused scores.

The weights are given, or by default chosen per fold on the others: for each fold, the
weights on a grid of step 0.1 whose fusion has the best mean emotion UA over the other folds
(ties to the weights closest to equal). A fold's own labels never choose its weights, so the
figures are those of a system a user could run; the weights chosen are written to
``OUT/weights``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speecheq.errors import SpeechEQError
from speecheq.experiments.ensemble import POSTERIORS, write_posteriors
from speecheq.fileio import write_table
from speecheq.metrics import unweighted_accuracy
from speecheq.scoring.decode_dir import Decoded, read_decode_dir
from speecheq.scoring.scores import Report, aggregate

GRID_STEP = 0.1
"""Step of the grid of weights searched per fold."""

FLOOR = 1e-4
"""Posteriors are written with 4 decimals: a 0.0000 counts as this before its logarithm."""


def speaker_normalised_scores(decoded: Decoded, utts: Sequence[str]) -> np.ndarray:
    """Log posteriors of ``utts`` (rows), less their speaker's mean log posterior per class."""
    missing = [u for u in utts if u not in decoded.speakers or u not in decoded.posteriors]
    if missing:
        raise SpeechEQError(
            f"{decoded.path}: utterance '{missing[0]}' has no speaker in utt2spk or no "
            f"posteriors in hyp/{POSTERIORS} (decode it again to write them)"
        )
    scores = np.log(np.maximum([decoded.posteriors[u] for u in utts], FLOOR))
    speakers = np.array([decoded.speakers[u] for u in utts])
    for speaker in set(speakers):
        rows = speakers == speaker
        scores[rows] -= scores[rows].mean(axis=0)
    return scores


def weight_grid(systems: int) -> np.ndarray:
    """Every weighting of ``systems`` systems in steps of :data:`GRID_STEP` (rows summing to 1),
    nearest to equal weights first."""
    steps = round(1 / GRID_STEP)
    rows = [row for row in itertools.product(range(steps + 1), repeat=systems) if sum(row) == steps]
    grid = np.array(rows, dtype=float) / steps
    return grid[np.argsort(np.abs(grid - 1 / systems).sum(axis=1), kind="stable")]


class FoldFusion:
    """One fold's references and each system's speaker-normalised scores."""

    def __init__(self, fold: str, decodes: Sequence[Decoded]) -> None:
        first = decodes[0]
        pairs = first.pairs["emotion"]
        self.fold = fold
        self.reference_dir = Path(first.path)
        """The first system's decode directory, whose references the fusion keeps."""
        self.classes = first.classes["emotion"]
        for other in decodes[1:]:
            if other.classes.get("emotion") != self.classes:
                raise SpeechEQError(f"{other.path}: other classes than {first.path}; no fusion")
            if set(other.pairs["emotion"].utts) != set(pairs.utts):
                raise SpeechEQError(f"{other.path}: other utterances than {first.path}; no fusion")
        self.utts = pairs.utts
        self.ref = pairs.ref
        self.scores = np.stack([speaker_normalised_scores(d, self.utts) for d in decodes])

    def fused(self, weights: np.ndarray) -> np.ndarray:
        """The fused scores under ``weights`` (one per system)."""
        return np.tensordot(weights, self.scores, axes=1)

    def ua(self, weights: np.ndarray) -> float:
        """Emotion UA of the fusion under ``weights``."""
        hyp = [self.classes[i] for i in self.fused(weights).argmax(axis=1)]
        return unweighted_accuracy(self.ref, hyp)


def cross_validated_weights(folds: Sequence[FoldFusion], systems: int) -> list[np.ndarray]:
    """For each fold, the grid weights of best mean UA over the other folds."""
    if len(folds) < 2:
        raise SpeechEQError("weights chosen on the other folds need two folds or more")
    grid = weight_grid(systems)
    table = np.array([[fold.ua(weights) for weights in grid] for fold in folds])
    chosen = []
    for k in range(len(folds)):
        others = np.delete(table, k, axis=0).mean(axis=0)
        chosen.append(grid[int(np.argmax(others))])
    return chosen


def fuse_systems(systems: Sequence[Path], out: Path, weights: Sequence[float] | None) -> Report:
    """Fuse every fold that all ``systems`` decoded with posteriors into ``out/<fold>/
    decode_test`` under the given ``weights`` (None: chosen on the other folds); return the
    report over folds."""
    if len(systems) < 2:
        raise SpeechEQError("fusion needs two systems or more")
    if weights is not None and (len(weights) != len(systems) or min(weights) < 0):
        raise SpeechEQError(f"--weights: give {len(systems)} non-negative weights, one a system")
    if weights is not None and sum(weights) <= 0:
        raise SpeechEQError("--weights: at least one weight must be positive")
    decoded_folds = [
        {p.parents[2].name for p in system.glob(f"*/decode_test/hyp/{POSTERIORS}")}
        for system in systems
    ]
    common = sorted(set.intersection(*decoded_folds))
    if not common:
        raise SpeechEQError(
            f"{', '.join(map(str, systems))}: no fold is decoded with posteriors "
            f"(<fold>/decode_test/hyp/{POSTERIORS}) in all of them"
        )
    folds = []
    for fold in common:
        decodes = [read_decode_dir(system / fold / "decode_test", fold) for system in systems]
        for decode in decodes:
            if "emotion" not in decode.pairs:
                raise SpeechEQError(f"{decode.path}: no emotion references to fuse")
        folds.append(FoldFusion(fold, decodes))
    if weights is None:
        per_fold = cross_validated_weights(folds, len(systems))
        how = "weights chosen per fold on the other folds"
    else:
        given = np.asarray(weights, dtype=float)
        per_fold = [given / given.sum()] * len(folds)
        how = f"weights {', '.join(f'{w:g}' for w in weights)}"
    written = []
    for fold, fold_weights in zip(folds, per_fold, strict=True):
        scores = fold.fused(fold_weights)
        posteriors = np.exp(scores - scores.max(axis=1, keepdims=True))
        posteriors /= posteriors.sum(axis=1, keepdims=True)
        decode_dir = out / fold.fold / "decode_test"
        by_utt = dict(zip(fold.utts, posteriors, strict=True))
        write_posteriors(decode_dir, fold.classes, by_utt, fold.reference_dir)
        written.append(read_decode_dir(decode_dir, fold.fold))
    write_table(
        out / "weights",
        {
            fold.fold: " ".join(f"{w:.2f}" for w in fold_weights)
            for fold, fold_weights in zip(folds, per_fold, strict=True)
        },
    )
    report = aggregate(written, f"{out.name}: fusion of {len(systems)} systems")
    report.notes.append(
        f"per-speaker normalised log posteriors of {', '.join(map(str, systems))} summed with "
        f"{how} ({out / 'weights'}); folds {', '.join(common)}"
    )
    return report
