"""Tiny randomly initialised upstreams of every supported family, written as checkpoints are
(``save_pretrained``), so that the real loading code reads real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

CONV = {"conv_dim": (32, 32, 32), "conv_kernel": (10, 4, 4), "conv_stride": (5, 4, 4)}
"""A feature encoder of 80 samples per frame (200 frames a second)."""
COMMON = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    **CONV,
}

FAMILIES = ("wav2vec2", "wav2vec2-large", "hubert", "wavlm", "data2vec-audio", "whisper")
"""``wav2vec2`` is base-style (group-normalised feature encoder), ``wav2vec2-large`` layer-
normalised (it takes an attention mask)."""


def tiny_config(family: str) -> Any:
    import transformers as t

    if family == "wav2vec2":
        return t.Wav2Vec2Config(feat_extract_norm="group", do_stable_layer_norm=False, **COMMON)
    if family == "wav2vec2-large":
        return t.Wav2Vec2Config(
            feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, **COMMON
        )
    if family == "hubert":
        return t.HubertConfig(feat_extract_norm="group", do_stable_layer_norm=False, **COMMON)
    if family == "wavlm":
        return t.WavLMConfig(
            feat_extract_norm="group", num_buckets=32, max_bucket_distance=64, **COMMON
        )
    if family == "data2vec-audio":
        options = {**COMMON, "num_conv_pos_embeddings": 2, "conv_pos_kernel_size": 5}
        return t.Data2VecAudioConfig(**options)
    return t.WhisperConfig(
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=4,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        vocab_size=100,
        max_target_positions=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )


def tiny_upstream(root: Path, family: str, seed: int = 0, normalize: bool = True) -> Path:
    """Write a tiny checkpoint of ``family`` to ``root/<family>``; return its path."""
    import transformers as t

    torch.manual_seed(seed)
    path = root / family
    t.AutoModel.from_config(tiny_config(family)).save_pretrained(path)
    if family == "whisper":
        t.WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    else:
        preprocessor = {"sampling_rate": 16000, "do_normalize": normalize}
        (path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return path
