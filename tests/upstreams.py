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


EMOTION2VEC_LABELS = ["生气/angry", "厌恶/disgusted", "恐惧/fearful", "开心/happy", "中立/neutral",
                      "其他/other", "难过/sad", "吃惊/surprised", "<unk>"]  # fmt: skip
"""The 9 classes of the emotion2vec plus models' head (``tokens.txt``)."""


def emotion2vec_conf(dim: int = 32, depth: int = 2, heads: int = 2) -> dict[str, Any]:
    """FunASR's ``config.yaml`` of an emotion2vec model: the published models' keys, tiny
    sizes; the feature encoder keeps their 320-sample stride (50 frames a second)."""
    audio = {
        "extractor_mode": "layer_norm",
        "feature_encoder_spec": f"[({dim}, 10, 5)] + [({dim}, 3, 2)] * 4 + [({dim},2,2)] * 2",
        "conv_pos_width": 15, "conv_pos_depth": 1, "conv_pos_groups": 4,
        "conv_pos_pre_ln": False, "prenet_depth": 1, "prenet_layerdrop": 0.0,
        "prenet_dropout": 0.0, "start_drop_path_rate": 0.0, "end_drop_path_rate": 0.0,
        "num_extra_tokens": 2, "init_extra_token_zero": False, "use_alibi_encoder": True,
        "alibi_scale": 1.0, "alibi_max_pos": None, "learned_alibi": False,
        "learned_alibi_scale": True, "learned_alibi_scale_per_head": True,
        "learned_alibi_scale_per_layer": False, "num_alibi_heads": heads, "model_depth": depth,
        "local_grad_mult": 1.0, "decoder": None,
    }  # fmt: skip
    model_conf = {
        "embed_dim": dim, "depth": depth, "num_heads": heads, "mlp_ratio": 4.0,
        "norm_eps": 1e-5, "norm_affine": True, "layer_norm_first": False,
        "encoder_dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0,
        "post_mlp_drop": 0.1, "dropout_input": 0.0, "layerdrop": 0.05,
        "start_drop_path_rate": 0.0, "end_drop_path_rate": 0.0, "end_of_block_targets": False,
        "average_top_k_layers": depth, "normalize": True, "modalities": {"audio": audio},
    }  # fmt: skip
    return {"model": "Emotion2vec", "model_conf": model_conf}


def tiny_emotion2vec(root: Path, head: bool = False, seed: int = 0) -> Path:
    """Write a tiny random emotion2vec checkpoint as FunASR publishes them (``config.yaml``,
    ``model.pt`` with the state dict under ``model``; with ``head``, the plus models' 9-way
    head and ``tokens.txt``) to ``root/emotion2vec[_plus]``; return its path."""
    import yaml

    from speecheq.features.emotion2vec import network_class

    torch.manual_seed(seed)
    config = emotion2vec_conf()
    if head:
        config["tokenizer"] = "CharTokenizer"
        config["tokenizer_conf"] = {"unk_symbol": "<unk>", "split_with_space": True}
    model = network_class()(
        model_conf=config["model_conf"], vocab_size=len(EMOTION2VEC_LABELS) if head else -1
    )
    path = root / ("emotion2vec_plus" if head else "emotion2vec")
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    torch.save({"model": model.state_dict()}, path / "model.pt")
    if head:
        (path / "tokens.txt").write_text("\n".join(EMOTION2VEC_LABELS) + "\n", encoding="utf-8")
    return path
