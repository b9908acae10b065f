"""Cepstral mean and variance normalisation of features as they are read (``features.cmvn``).

The statistics themselves are computed in stage 2 (:mod:`speecheq.features.cmvn_stats`); this module
applies them in one of the modes of the training config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speecheq.data.datadir import DataDir
from speecheq.data.ops import speaker_corpora
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn_stats import mean_std, speaker_stats, sum_stats, utterance_stats

CmvnStats = np.ndarray
"""Kaldi CMVN statistics, ``2 x (dim + 1)`` float64 (see :mod:`speecheq.features.cmvn_stats`)."""


def _speaker_stats(path: Path, data: DataDir) -> dict[str, CmvnStats]:
    if not data.has("cmvn.scp"):
        raise SpeechEQError(
            f"{path}: cmvn.scp is missing, which per-speaker, per-corpus or global CMVN needs "
            f"(compute features with 'speecheq feats {path}')"
        )
    return speaker_stats(data)


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
        stats = _speaker_stats(path, data)
        return cls(mode, sum_stats(stats.values()))._with_stats(path, data, stats)

    def for_data(self, path: Path, data: DataDir) -> Cmvn:
        """The same normalisation for another data directory (its own speakers' stats)."""
        if self.mode not in ("speaker", "corpus"):
            return self
        return self._with_stats(path, data, _speaker_stats(path, data))

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
