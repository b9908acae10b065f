"""Stage 2 features: Kaldi-compatible log-mel filterbanks (optional pitch), CMVN stats."""

from speecheq.features import cmvn
from speecheq.features.config import FeatureConfig
from speecheq.features.extract import FeatsReport, make_feats
from speecheq.features.fbank import compute_features

__all__ = ["FeatsReport", "FeatureConfig", "cmvn", "compute_features", "make_feats"]
