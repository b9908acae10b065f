"""Cepstral mean and variance normalization (CMVN) statistics in Kaldi's format.

Stats are a 2 x (dim + 1) float64 matrix: row 0 holds the per-dimension sums with the frame
count in the last column, row 1 the per-dimension sums of squares (last column 0). Stats add
up, so a fold's global CMVN is the sum of its training speakers' stats, and no test data
leaks into it.
"""

from __future__ import annotations

from collections.abc import Iterable

import kaldiio
import numpy as np

from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError


def utterance_stats(feats: np.ndarray) -> np.ndarray:
    """The CMVN stats of one feature matrix (frames x dim)."""
    feats = np.asarray(feats, dtype=np.float64)
    stats = np.zeros((2, feats.shape[1] + 1))
    stats[0, :-1] = feats.sum(axis=0)
    stats[0, -1] = len(feats)
    stats[1, :-1] = np.square(feats).sum(axis=0)
    return stats


def sum_stats(stats: Iterable[np.ndarray]) -> np.ndarray:
    """The sum of several stats matrices (e.g. every training speaker's)."""
    total: np.ndarray | None = None
    for item in stats:
        total = np.array(item, dtype=np.float64) if total is None else total + item
    if total is None:
        raise ValueError("sum_stats needs at least one stats matrix")
    return total


def mean_std(stats: np.ndarray, floor: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation; the variance is floored at ``floor``."""
    count = stats[0, -1]
    if count <= 0:
        raise ValueError("CMVN stats with a zero frame count have no mean")
    mean = stats[0, :-1] / count
    variance = stats[1, :-1] / count - np.square(mean)
    return mean, np.sqrt(np.maximum(variance, floor))


def speaker_stats(data: DataDir) -> dict[str, np.ndarray]:
    """Each speaker's stats, read from the arks that the data directory's ``cmvn.scp`` names."""
    if not data.has("cmvn.scp"):
        raise SpeechEQError("the data directory has no cmvn.scp: run 'speecheq feats' on it first")
    stats = {}
    for speaker, location in data.get("cmvn.scp").items():
        try:
            stats[speaker] = np.asarray(kaldiio.load_mat(location), dtype=np.float64)
        except (OSError, ValueError, EOFError) as err:
            raise SpeechEQError(
                f"cmvn.scp: cannot read the stats of speaker '{speaker}' from '{location}' ({err})"
            ) from None
    return stats
