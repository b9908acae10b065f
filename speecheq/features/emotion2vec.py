"""emotion2vec upstreams (Ma et al., 2024: base, plus-seed, plus-base, plus-large) through
FunASR (the ``emotion2vec`` extra), from their published checkpoint directories.

A checkpoint is FunASR's layout: ``config.yaml`` (``model: Emotion2vec`` and its
``model_conf``) and ``model.pt`` (the state dict, under ``model`` or bare), with ``tokens.txt``
for the plus models' 9-way head, which is not used here. The network is built by FunASR's own
``Emotion2vec`` class from that config and its weights loaded strictly (every tensor present,
in its shape; a head or decoder in the file is left out). Its input is the 16 kHz waveform
normalised over the utterance (FunASR's ``layer_norm`` of the source); each utterance runs on
its own, as FunASR runs it. Its hidden states are the input of the first transformer block
and every block's output, the extra tokens removed: 50 frames a second.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from speecheq.errors import SpeechEQError

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.pt"
FAMILY = "emotion2vec"
NORMALIZE_EPS = 1e-5
"""FunASR normalises the waveform with ``layer_norm``, whose epsilon this is."""


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds an emotion2vec checkpoint in FunASR's layout."""
    file = path / CONFIG_FILE
    if not file.is_file() or (path / "config.json").is_file():
        return False
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8")).get("model") == "Emotion2vec"
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError):
        return False


def read_config(path: Path) -> dict[str, Any]:
    """The upstream config of a checkpoint directory, as speecheq describes every upstream:
    family, layers, width, the feature encoder's kernels and strides, and FunASR's own config
    under ``funasr``."""
    file = path / CONFIG_FILE
    try:
        funasr = yaml.safe_load(file.read_text(encoding="utf-8"))
        model_conf = funasr["model_conf"]
        spec = model_conf["modalities"]["audio"]["feature_encoder_spec"]
        layers = feature_encoder(spec)
        config = {
            "model_type": FAMILY,
            "num_hidden_layers": int(model_conf["depth"]),
            "hidden_size": int(model_conf["embed_dim"]),
            "conv_kernel": [kernel for _, kernel, _ in layers],
            "conv_stride": [stride for _, _, stride in layers],
            "funasr": funasr,
        }
    except (yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise SpeechEQError(f"{file}: not an emotion2vec config ({err})") from None
    if not (path / WEIGHTS_FILE).is_file():
        raise SpeechEQError(f"{path}: no weights ({WEIGHTS_FILE})")
    return config


def preprocessor(config: dict[str, Any]) -> dict[str, Any]:
    """How audio is prepared for it (as a ``preprocessor_config.json`` would say): 16 kHz,
    normalised as FunASR does where its config asks."""
    return {
        "sampling_rate": 16000,
        "do_normalize": bool(config["funasr"]["model_conf"].get("normalize", True)),
        "normalize_eps": NORMALIZE_EPS,
    }


def feature_encoder(spec: str) -> list[tuple[int, int, int]]:
    """``(channels, kernel, stride)`` of each convolution of a ``feature_encoder_spec``, such
    as ``'[(512, 10, 5)] + [(512, 3, 2)] * 4'`` (evaluated without ``eval``)."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Tuple | ast.List):
            items = [value(item) for item in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"feature_encoder_spec: cannot read '{ast.unparse(node)}'")

    layers = value(ast.parse(spec, mode="eval").body)
    if not layers or not all(isinstance(x, tuple) and len(x) == 3 for x in layers):
        raise ValueError(
            f"feature_encoder_spec: expected (channels, kernel, stride) tuples: {spec}"
        )
    return [tuple(layer) for layer in layers]


def network_class() -> type[nn.Module]:
    """FunASR's ``Emotion2vec`` class (importing FunASR leaves the root logger as it was)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        logging.disable(logging.WARNING)  # FunASR's notes on optional packages
        from funasr.models.emotion2vec.model import Emotion2vec
    except ImportError as err:
        raise SpeechEQError(
            f"emotion2vec upstreams need FunASR: pip install 'speecheq[emotion2vec]' ({err})"
        ) from None
    finally:  # importing FunASR configures the root logger: undone
        logging.disable(logging.NOTSET)
        root.setLevel(level)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
    return Emotion2vec


def build(config: dict[str, Any]) -> nn.Module:
    """FunASR's ``Emotion2vec`` network of an upstream config (random weights, no head)."""
    model_conf = {**config["funasr"]["model_conf"], "layerdrop": 0.0}  # deterministic layers
    try:
        return network_class()(model_conf=model_conf, vocab_size=-1).eval()
    except SpeechEQError:
        raise
    except Exception as err:  # FunASR raises what its config parsing meets
        raise SpeechEQError(f"cannot build emotion2vec from its config ({err})") from None


def load(path: Path, config: dict[str, Any]) -> nn.Module:
    """The network of the checkpoint at ``path``, its weights loaded strictly."""
    model = build(config)
    try:
        stored = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file: pickle and zip errors alike
        raise SpeechEQError(f"{path / WEIGHTS_FILE}: cannot read its weights ({err})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(stored, dict) and isinstance(stored.get(key), dict):
            stored = stored[key]
    own = model.state_dict()
    missing = [key for key in own if key not in stored]
    if missing:
        raise SpeechEQError(
            f"{path}: the weights do not fit {CONFIG_FILE}: {len(missing)} tensor(s) missing "
            f"(e.g. {missing[0]})"
        )
    wrong = [key for key, value in own.items() if stored[key].shape != value.shape]
    if wrong:
        raise SpeechEQError(
            f"{path}: the weights do not fit {CONFIG_FILE}: {len(wrong)} tensor(s) differ in "
            f"shape (e.g. {wrong[0]}: {tuple(stored[wrong[0]].shape)} stored, {CONFIG_FILE} "
            f"gives {tuple(own[wrong[0]].shape)})"
        )
    model.load_state_dict({key: stored[key] for key in own})
    return model


def hidden_states(model: nn.Module, waveforms: torch.Tensor) -> torch.Tensor:
    """``(layers, batch, frames, dim)``: the input of the first block and every block's
    output, without the extra tokens, of unpadded waveforms ``(batch, samples)``."""
    states: list[torch.Tensor] = []
    hooks = [model.blocks[0].register_forward_pre_hook(lambda _, args: states.append(args[0]))]
    hooks += [
        block.register_forward_hook(lambda _, __, output: states.append(output[0]))
        for block in model.blocks
    ]
    try:
        model.extract_features(waveforms, padding_mask=None, mask=False)
    finally:
        for hook in hooks:
            hook.remove()
    if model.norm is not None:  # a final layer norm belongs to the last layer
        states[-1] = model.norm(states[-1])
    extra = model.modality_encoders["AUDIO"].modality_cfg.num_extra_tokens
    return torch.stack([state[:, extra:] for state in states])
