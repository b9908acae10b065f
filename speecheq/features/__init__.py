"""Stage 2 features: Kaldi-compatible log-mel filterbanks (optional pitch), or the hidden layers
of a pretrained upstream; CMVN statistics and their application."""

from __future__ import annotations

from speecheq.features import cmvn
from speecheq.features.config import FeatureConfig
from speecheq.features.extract import BACKUP, FeatsReport, LocalJobs, make_feats
from speecheq.features.fbank import compute_features
from speecheq.features.ssl import SSLConfig


def parse_feature_conf(text: str, source: str) -> FeatureConfig | SSLConfig:
    """The options a data directory's ``conf/feats.conf`` records: filterbank or upstream."""
    if any(line.strip() == "--type=ssl" for line in text.splitlines()):
        return SSLConfig.parse(text, source)
    return FeatureConfig.parse(text, source)


__all__ = [
    "BACKUP",
    "FeatsReport",
    "FeatureConfig",
    "LocalJobs",
    "SSLConfig",
    "cmvn",
    "compute_features",
    "make_feats",
    "parse_feature_conf",
]
