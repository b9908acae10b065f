"""Pretrained self-supervised speech encoders ("upstreams") from local checkpoint directories.

An upstream is a Hugging Face checkpoint directory (``config.json`` and ``model.safetensors``
or ``pytorch_model.bin``, as ``save_pretrained`` writes them), loaded with ``transformers``
offline (``local_files_only``) for the wav2vec 2.0, HuBERT, WavLM and data2vec-audio families
and the encoder of Whisper; or an emotion2vec checkpoint in FunASR's layout, loaded through
FunASR (:mod:`.emotion2vec`). Nothing is downloaded here (hub names resolve in :mod:`.hub`).

Preprocessing follows the checkpoint's ``preprocessor_config.json``: audio is resampled to its
rate; wav2vec-style models normalise each utterance's waveform when ``do_normalize`` asks;
Whisper gets its own log-mel front end, every utterance padded to its 30 s window (longer ones
are cut into 30 s pieces) and its output trimmed to the utterance's frames. Padding never
changes an utterance's hidden states: models whose feature encoder normalises over time
(``feat_extract_norm="group"``: wav2vec2-base, HuBERT-base, WavLM-base), and data2vec-audio,
whose positional convolutions carry padding into an utterance's last frames, run each
utterance on its own; the others take an attention mask and run in batches.

An upstream is identified by its path and the SHA-256 digests of its config and weights
(:func:`digests`), which feature options and model files record.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from speecheq.errors import SpeechEQError
from speecheq.features import emotion2vec
from speecheq.features.hub import UpstreamSource, resolve_upstream

FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper", emotion2vec.FAMILY)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WHISPER_SECONDS = 30
NORMALIZE_EPS = 1e-7
"""Added to a waveform's variance where a checkpoint asks for normalisation (emotion2vec sets
its own)."""


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise SpeechEQError(
            "pretrained upstreams need transformers (pip install 'speecheq[ssl]')"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def _weight_files(path: Path) -> list[Path]:
    """The weight files of a checkpoint directory (the shards of an index too)."""
    for name in WEIGHT_FILES:
        index = path / f"{name}.index.json"
        if index.is_file():
            shards = json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()
            return [index, *(path / shard for shard in sorted(set(shards)))]
        if (path / name).is_file():
            return [path / name]
    return []


def check_directory(path: Path) -> dict[str, Any]:
    """The checkpoint's config (``config.json``; emotion2vec's ``config.yaml`` as
    :func:`.emotion2vec.read_config` describes it); raise naming ``path`` and what was
    expected."""
    if not path.is_dir():
        raise SpeechEQError(
            f"{path}: no upstream here (expected a checkpoint directory with config.json and "
            "model.safetensors, as save_pretrained writes)"
        )
    if emotion2vec.is_checkpoint(path):
        return emotion2vec.read_config(path)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpeechEQError(f"{path}: no config.json (not a Hugging Face checkpoint)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise SpeechEQError(f"{path}/config.json: not valid JSON ({err})") from None
    if config.get("model_type") not in FAMILIES:
        raise SpeechEQError(
            f"{path}: model type '{config.get('model_type')}' is not a supported upstream "
            f"(supported: {', '.join(FAMILIES)})"
        )
    if not _weight_files(path):
        raise SpeechEQError(f"{path}: no weights ({' or '.join(WEIGHT_FILES)})")
    return config


def layout(config: dict[str, Any]) -> tuple[int, int]:
    """The hidden states (the input embedding and every layer) and their width, of a config."""
    if config["model_type"] == "whisper":
        return int(config["encoder_layers"]) + 1, int(config["d_model"])
    return int(config["num_hidden_layers"]) + 1, int(config["hidden_size"])


def digests(path: Path) -> dict[str, str]:
    """SHA-256 digests (16 hex digits) of a checkpoint's config and weights:
    ``config_sha256``, ``weights_sha256``."""
    check_directory(path)

    def digest(files: Sequence[Path]) -> str:
        hasher = hashlib.sha256()
        for file in files:
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    hasher.update(block)
        return hasher.hexdigest()[:16]

    if emotion2vec.is_checkpoint(path):
        files = [path / emotion2vec.CONFIG_FILE], [path / emotion2vec.WEIGHTS_FILE]
    else:
        files = [path / "config.json"], _weight_files(path)
    return {"config_sha256": digest(files[0]), "weights_sha256": digest(files[1])}


@dataclass(frozen=True)
class Preparation:
    """How raw audio becomes an upstream's input, and how many frames come out: light enough
    for data loaders (no model)."""

    rate: int
    normalize: bool
    kernels: tuple[int, ...]
    """The feature encoder's convolution kernels (wav2vec-style), or ``(hop,)`` for Whisper."""
    strides: tuple[int, ...]
    eps: float = NORMALIZE_EPS
    """Added to the waveform's variance where it is normalised."""

    @classmethod
    def from_config(cls, config: dict[str, Any], preprocessor: dict[str, Any]) -> Preparation:
        rate = int(preprocessor.get("sampling_rate", 16000))
        if config["model_type"] == "whisper":  # a 10 ms log-mel hop, then a stride-2 convolution
            hop = 2 * int(preprocessor.get("hop_length", 160))
            return cls(rate, False, (hop,), (hop,))
        return cls(
            rate,
            bool(preprocessor.get("do_normalize", False)),
            tuple(config["conv_kernel"]),
            tuple(config["conv_stride"]),
            float(preprocessor.get("normalize_eps", NORMALIZE_EPS)),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preparation:
        """As ``dataclasses.asdict`` wrote it (in an export's metadata; JSON made the tuples
        lists)."""
        return cls(**{**data, "kernels": tuple(data["kernels"]), "strides": tuple(data["strides"])})

    def frames(self, samples: int) -> int:
        """Hidden-state frames of ``samples`` samples at the upstream's rate."""
        if len(self.kernels) == 1 and self.kernels == self.strides:  # Whisper
            return math.ceil(samples / self.strides[0])
        for kernel, stride in zip(self.kernels, self.strides, strict=True):
            samples = max(0, (samples - kernel) // stride + 1)
        return samples

    def frames_of(self, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`frames` of a tensor of sample counts, in tensor operations (exportable). The
        integer version stays beside it: data loaders call it per utterance, 40x faster."""
        if len(self.kernels) == 1 and self.kernels == self.strides:  # Whisper
            return torch.div(lengths + self.strides[0] - 1, self.strides[0], rounding_mode="floor")
        for kernel, stride in zip(self.kernels, self.strides, strict=True):
            lengths = torch.clamp(
                torch.div(lengths - kernel, stride, rounding_mode="floor") + 1, min=0
            )
        return lengths

    def waveform(self, samples: np.ndarray, rate: int, who: str) -> np.ndarray:
        """The input of one utterance of mono samples at ``rate``: resampled, normalised when
        the checkpoint asks, as a ``(samples, 1)`` column."""
        from speecheq.features.fbank import resampler

        waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        if rate != self.rate:
            waveform = resampler(rate, self.rate)(waveform)
        if self.frames(len(waveform)) < 1:
            raise SpeechEQError(f"{who}: {len(samples) / rate:.3f} s is too short for the upstream")
        if self.normalize:
            spread = torch.sqrt(waveform.var(unbiased=False) + self.eps)
            waveform = (waveform - waveform.mean()) / spread
        return waveform.numpy()[:, None]


class Upstream(nn.Module):
    """A pretrained encoder and its preprocessing: waveforms in, every layer's hidden states out.

    Build it from a checkpoint directory (:meth:`load`), or, for a fine-tuned upstream stored
    in a model file, from its config texts (:meth:`from_config`, weights loaded after).
    """

    def __init__(self, model: nn.Module, config: dict[str, Any], preprocessor: dict[str, Any]):
        super().__init__()
        self.family = str(config["model_type"])
        self.config_text = json.dumps(config, sort_keys=True)
        self.preprocessor_text = json.dumps(preprocessor, sort_keys=True)
        self.encoder = model.get_encoder() if self.family == "whisper" else model
        self.source: UpstreamSource | None = None
        """Where it was loaded from: its directory, and its hub id and commit if it has one
        (None when built from a model file)."""
        self.preparation = Preparation.from_config(config, preprocessor)
        self.rate = self.preparation.rate
        self.masked = config.get("feat_extract_norm") == "layer"
        if self.family == "whisper":
            transformers = _transformers()
            self.mels = transformers.WhisperFeatureExtractor(
                **{**preprocessor, "feature_size": config.get("num_mel_bins", 80)}
            )
        self.num_layers, self.dim = layout(config)
        self.eval()

    @classmethod
    def load(cls, spec: str | Path) -> Upstream:
        """The upstream ``spec`` names: a checkpoint directory, or a hub model id
        (``org/name[@revision]``, see :mod:`speecheq.features.hub`)."""
        source = resolve_upstream(spec)
        path = source.path
        config = check_directory(path)
        if config["model_type"] == emotion2vec.FAMILY:
            upstream = cls(emotion2vec.load(path, config), config, emotion2vec.preprocessor(config))
            upstream.source = source
            return upstream
        transformers = _transformers()
        overrides = {"layerdrop": 0.0, "encoder_layerdrop": 0.0, "mask_time_prob": 0.0}
        try:
            model, info = transformers.AutoModel.from_pretrained(
                path,
                local_files_only=True,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported below, naming the tensor
                **{k: v for k, v in overrides.items() if k in config},
            )
        except SafetensorError as err:
            raise SpeechEQError(f"{path}: its weights are damaged or truncated ({err})") from None
        except (OSError, ValueError, RuntimeError) as err:
            raise SpeechEQError(f"{path}: cannot load this upstream ({str(err)[:200]})") from None
        if info["mismatched_keys"]:
            key, stored, expected = next(iter(info["mismatched_keys"]))
            raise SpeechEQError(
                f"{path}: the weights do not fit config.json: {len(info['mismatched_keys'])} "
                f"tensor(s) differ in shape (e.g. {key}: {tuple(stored)} stored, config.json "
                f"gives {tuple(expected)})"
            )
        missing = sorted(key for key in info["missing_keys"] if not key.startswith("masked_spec"))
        if missing:
            raise SpeechEQError(
                f"{path}: the weights miss {len(missing)} of the model's tensors (e.g. "
                f"{missing[0]}); is it a checkpoint of a {config['model_type']} model?"
            )
        upstream = cls(model, model.config.to_dict(), _preprocessor(path))
        upstream.source = source
        return upstream

    @functools.cached_property
    def origin(self) -> dict[str, str]:
        """Where it was loaded from: ``path``, ``config_sha256``, ``weights_sha256`` (hashed
        when first asked for), and ``model_id`` and ``revision`` (the commit) for a hub model."""
        if self.source is None:
            return {}
        hub = {"model_id": self.source.model_id, "revision": self.source.revision}
        found = {"path": str(self.source.path), **digests(self.source.path)}
        return {**found, **hub} if self.source.model_id else found

    @classmethod
    def from_config(cls, config_text: str, preprocessor_text: str) -> Upstream:
        """The architecture of a stored upstream, with untrained weights (load them after)."""
        config = json.loads(config_text)
        if config["model_type"] == emotion2vec.FAMILY:
            return cls(emotion2vec.build(config), config, json.loads(preprocessor_text))
        transformers = _transformers()
        options = {key: value for key, value in config.items() if key != "model_type"}
        model_config = transformers.AutoConfig.for_model(config["model_type"], **options)
        model = transformers.AutoModel.from_config(model_config)
        return cls(model, config, json.loads(preprocessor_text))

    def frames(self, samples: int) -> int:
        """Hidden-state frames of ``samples`` samples at the upstream's rate."""
        return self.preparation.frames(samples)

    def prepare(self, samples: np.ndarray, rate: int, who: str) -> np.ndarray:
        """The encoder's input for one utterance (see :meth:`Preparation.waveform`)."""
        return self.preparation.waveform(samples, rate, who)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(layers, batch, frames, dim)`` hidden states of zero-padded waveforms
        ``(batch, samples, 1)`` of the given lengths, and each utterance's frames."""
        waveforms = waveforms[..., 0]
        device = waveforms.device
        frames = self.preparation.frames_of(lengths)
        if torch.compiler.is_exporting():  # an export runs one whole utterance at a time
            return self._hidden(waveforms, None), frames
        utterances = [w[:n] for w, n in zip(waveforms, lengths.tolist(), strict=True)]
        if self.family == "whisper":
            hidden = _stack([self._whisper(w) for w in utterances])
        elif self.masked:
            mask = torch.arange(waveforms.shape[1], device=device)[None] < lengths[:, None]
            hidden = self._hidden(waveforms, mask.long())
        else:  # group-normalised feature encoders see each utterance alone
            hidden = _stack([self._hidden(w[None], None) for w in utterances])
        return hidden[:, :, : int(frames.max())], frames

    def _hidden(self, waveforms: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.family == emotion2vec.FAMILY:
            return emotion2vec.hidden_states(self.encoder, waveforms)
        output = self.encoder(waveforms, attention_mask=mask, output_hidden_states=True)
        return torch.stack(output.hidden_states)

    def _whisper(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(layers, 1, frames, dim)`` of one utterance, in 30 s pieces."""
        window = WHISPER_SECONDS * self.rate
        pieces = []
        for start in range(0, len(waveform), window):
            piece = waveform[start : start + window].detach().cpu().numpy()
            mels = self.mels(piece, sampling_rate=self.rate, return_tensors="pt").input_features
            output = self.encoder(mels.to(waveform.device), output_hidden_states=True)
            pieces.append(torch.stack(output.hidden_states)[:, :, : self.frames(len(piece))])
        return torch.cat(pieces, dim=2)


def _stack(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``(layers, 1, frames, dim)`` parts as one batch, zero-padded to the longest."""
    longest = max(part.shape[2] for part in parts)
    return torch.cat([nn.functional.pad(p, (0, 0, 0, longest - p.shape[2])) for p in parts], dim=1)


def _preprocessor(path: Path) -> dict[str, Any]:
    """The checkpoint's ``preprocessor_config.json`` (the family's defaults without one)."""
    file = path / "preprocessor_config.json"
    if not file.is_file():
        return {"sampling_rate": 16000, "do_normalize": False}
    try:
        return dict(json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as err:
        raise SpeechEQError(f"{file}: not valid JSON ({err})") from None
