"""Cepstral mean and variance normalisation (CMVN): statistics in Kaldi's format, computed in
stage 2, and their application as features are read, in the modes of ``features.cmvn``.

Stats are a 2 x (dim + 1) float64 matrix: row 0 holds the per-dimension sums with the frame
count in the last column, row 1 the per-dimension sums of squares (last column 0). Stats add
up, so a fold's global CMVN is the sum of its training speakers' stats, and no test data
leaks into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import kaldiio
import numpy as np

from speecheq.data.datadir import DataDir
from speecheq.data.ops import speaker_corpora
from speecheq.errors import SpeechEQError

CmvnStats = np.ndarray
"""Kaldi CMVN statistics, ``2 x (dim + 1)`` float64."""


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


def speaker_stats(data: DataDir, path: str | Path) -> dict[str, CmvnStats]:
    """Each speaker's stats, read from the arks that the ``cmvn.scp`` of ``data`` (at ``path``)
    names."""
    if not data.has("cmvn.scp"):
        raise SpeechEQError(
            f"{path}: cmvn.scp is missing, which per-speaker, per-corpus or global CMVN needs "
            f"(compute features with 'speecheq feats {path}')"
        )
    stats = {}
    for speaker, location in data.get("cmvn.scp").items():
        try:
            stats[speaker] = np.asarray(kaldiio.load_mat(location), dtype=np.float64)
        except (OSError, ValueError, EOFError) as err:
            raise SpeechEQError(
                f"{path}/cmvn.scp: cannot read the stats of speaker '{speaker}' from "
                f"'{location}' ({err})"
            ) from None
    return stats


@dataclass(frozen=True)
class Cmvn:
    """Cepstral mean and variance normalisation in one of the modes of ``features.cmvn``.

    ``global``: the statistics of all training speakers summed (kept in the model file);
    ``speaker``: each speaker's own statistics (from the data directory being read);
    ``corpus``: the statistics of each corpus's speakers summed, from the data directory being
    read (so a test corpus is normalised by its own statistics, a test fold by those of its
    speakers); an utterance without a ``utt2corpus`` line gets the global statistics;
    ``utterance``: each utterance's own; ``none``: the features unchanged.
    """

    mode: str
    global_stats: CmvnStats | None = None
    speaker_stats: Mapping[str, CmvnStats] = field(default_factory=dict)
    corpus_of: Mapping[str, str] = field(default_factory=dict)
    """Utterance -> its corpus (``corpus`` mode)."""
    corpus_stats: Mapping[str, CmvnStats] = field(default_factory=dict)

    @classmethod
    def from_training(cls, mode: str, path: Path, data: DataDir) -> Cmvn:
        """CMVN for the training set ``data``: global stats are the sum of its speakers'."""
        if mode not in ("global", "speaker", "corpus"):
            return cls(mode)
        stats = speaker_stats(data, path)
        return cls(mode, sum_stats(stats.values()))._with_stats(path, data, stats)

    def for_data(self, path: Path, data: DataDir) -> Cmvn:
        """The same normalisation for another data directory (its own speakers' stats)."""
        if self.mode not in ("speaker", "corpus"):
            return self
        return self._with_stats(path, data, speaker_stats(data, path))

    def _with_stats(self, path: Path, data: DataDir, stats: Mapping[str, CmvnStats]) -> Cmvn:
        if self.mode == "speaker":
            return Cmvn(self.mode, self.global_stats, stats)
        if self.mode != "corpus":
            return self
        members: dict[str, list[CmvnStats]] = {}
        for speaker, corpus in speaker_corpora(data, f"{path}/utt2corpus").items():
            if speaker not in stats:
                raise SpeechEQError(f"{path}/cmvn.scp: speaker '{speaker}' has no CMVN stats")
            members.setdefault(corpus, []).append(stats[speaker])
        corpus_stats = {corpus: sum_stats(group) for corpus, group in members.items()}
        corpus_of = dict(data.get("utt2corpus"))
        return Cmvn(self.mode, self.global_stats, corpus_of=corpus_of, corpus_stats=corpus_stats)

    def __call__(self, feats: np.ndarray, speaker: str | None, utt: str) -> np.ndarray:
        """Normalise one utterance's features (``speaker`` is needed in ``speaker`` mode)."""
        if self.mode == "none":
            return feats
        if self.mode == "global":
            stats = self.global_stats
        elif self.mode == "speaker":
            stats = self.speaker_stats.get(speaker or "")
            if stats is None:
                raise SpeechEQError(f"utterance '{utt}': speaker '{speaker}' has no CMVN stats")
        elif self.mode == "corpus":
            corpus = self.corpus_of.get(utt)
            stats = self.global_stats if corpus is None else self.corpus_stats[corpus]
        else:
            stats = utterance_stats(feats)
        assert stats is not None
        if stats.shape[1] != feats.shape[1] + 1:
            raise SpeechEQError(
                f"utterance '{utt}': CMVN stats of dimension {stats.shape[1] - 1} do not fit "
                f"features of dimension {feats.shape[1]}"
            )
        mean, std = mean_std(stats)
        return ((feats - mean) / std).astype(np.float32)
