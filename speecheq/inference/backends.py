"""What runs a model's network on a batch of normalised features: PyTorch on a model file, or
onnxruntime / TorchScript on a model ``speecheq export`` wrote.

Every backend knows the model's tasks (rebuilt from its config and inventories), feature
options and CMVN, and returns each head's output and the encoder's frame lengths as arrays.
An export carries all of that as JSON metadata (:data:`EXPORT_FORMAT`), so it runs without the
model file.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speecheq.config import config_from_dict
from speecheq.device import choose_device
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import Cmvn
from speecheq.features.upstream import Preparation
from speecheq.fileio import path_problem
from speecheq.modelfile import TrainedModel, build_tasks, load_model
from speecheq.models import EnsembleModel, InputSpec, SpeechEQModel
from speecheq.tasks import Task

EXPORT_FORMAT = "speecheq-export-1"
METADATA_KEY = "speecheq"
"""The ONNX metadata property, or TorchScript extra file, holding the JSON metadata."""


class Backend(ABC):
    """A loaded model: its tasks, feature options, CMVN, and a way to run its network."""

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        self.path = path
        try:
            self.config = metadata["config"]
            self.tasks: list[Task] = build_tasks(
                config_from_dict(self.config, str(path)), metadata["inventories"]
            )
            stats = metadata["cmvn"]["global_stats"]
            self.cmvn = Cmvn(
                metadata["cmvn"]["mode"], None if stats is None else np.asarray(stats, np.float64)
            )
            self.feature_dim = int(metadata["feature_dim"])
            self.spec = InputSpec(**metadata.get("input", {}))
            prepared = metadata.get("preparation")
            self.preparation: Preparation | None = (
                None if prepared is None else Preparation.from_dict(prepared)
            )
            """How raw audio becomes the input of a model with its own upstream."""
            self.feats_conf: str | None = metadata["feats_conf"]
            self.trained_on: dict[str, Any] = dict(metadata.get("trained_on") or {})
        except (KeyError, TypeError, ValueError) as err:
            raise SpeechEQError(
                f"{path}: its metadata is not that of a speecheq model ({err})"
            ) from None

    @abstractmethod
    def run(self, feats: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        """Head outputs by task name, and ``frame_lengths``, for ``(batch, frames, dim)``."""


class TorchBackend(Backend):
    """A model file of ``speecheq train`` run by PyTorch."""

    def __init__(self, path: Path, device: str) -> None:
        self.device = choose_device(device)
        trained = load_model(path, self.device)
        super().__init__(path, export_metadata(trained, path))
        self.network = HeadOutputs(trained.model, [task.name for task in trained.tasks])

    @torch.inference_mode()
    def run(self, feats: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.network(
            torch.from_numpy(feats).to(self.device), torch.from_numpy(lengths).to(self.device)
        )
        return dict(
            zip(self.network.names, (o.float().cpu().numpy() for o in outputs), strict=True)
        )


class OnnxBackend(Backend):
    """An ONNX export run by onnxruntime (CPU)."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise SpeechEQError(
                f"{path}: running an ONNX model needs onnxruntime (pip install 'speecheq[onnx]')"
            ) from None
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise SpeechEQError(f"{path}: cannot load this ONNX model ({str(err)[:200]})") from None
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        super().__init__(path, _read_metadata(path, text))
        self.names = [output.name for output in self.session.get_outputs()]

    def run(self, feats: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        if self.spec.kind != "upstream":
            outputs = self.session.run(None, {"feats": feats, "lengths": lengths})
            return dict(zip(self.names, outputs, strict=True))
        alone = [  # an export with its upstream inside takes one utterance at a time
            self.session.run(None, {"feats": row[None, :length], "lengths": length[None]})
            for row, length in zip(feats, lengths, strict=True)
        ]
        return {name: _stacked([o[i] for o in alone]) for i, name in enumerate(self.names)}


class TorchScriptBackend(Backend):
    """A TorchScript export run by PyTorch (CPU)."""

    def __init__(self, path: Path) -> None:
        extra = {METADATA_KEY: ""}
        try:
            with warnings.catch_warnings():  # torch.jit's deprecation note
                warnings.simplefilter("ignore", FutureWarning)
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as err:  # torch.jit raises many kinds for a foreign file
            raise SpeechEQError(
                f"{path}: cannot load this TorchScript model ({str(err)[:200]})"
            ) from None
        metadata = _read_metadata(path, extra[METADATA_KEY])
        super().__init__(path, metadata)
        self.names = list(metadata["outputs"])

    @torch.inference_mode()
    def run(self, feats: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.module(torch.from_numpy(feats), torch.from_numpy(lengths))
        return dict(zip(self.names, (o.numpy() for o in outputs), strict=True))


def _stacked(outputs: list[np.ndarray]) -> np.ndarray:
    """Outputs of batch 1 as one batch, frame-level ones zero-padded to the longest."""
    if outputs[0].ndim < 3:
        return np.concatenate(outputs)
    longest = max(output.shape[1] for output in outputs)
    padding = [[(0, 0), (0, longest - o.shape[1]), (0, 0)] for o in outputs]
    return np.concatenate([np.pad(o, pad) for o, pad in zip(outputs, padding, strict=True)])


def _read_metadata(path: Path, text: str | bytes | None) -> dict[str, Any]:
    try:
        metadata = json.loads(text or "")
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        raise SpeechEQError(f"{path}: not a model exported by 'speecheq export' (no metadata)")
    return metadata


def load_backend(path: Path, device: str = "cpu") -> Backend:
    """The backend for a model file (``.pt``), an ONNX (``.onnx``) or TorchScript (``.ts``)
    export."""
    problem = path_problem(path)
    if problem:
        raise SpeechEQError(f"{path}: model file {problem}")
    if path.suffix == ".onnx":
        return OnnxBackend(path)
    if path.suffix == ".ts":
        return TorchScriptBackend(path)
    return TorchBackend(path, device)


class HeadOutputs(nn.Module):
    """The network as exports run it: normalised features and lengths in, the encoder's frame
    lengths, the pooled utterance embedding and every head's output out (in ``names`` order)."""

    def __init__(self, model: SpeechEQModel | EnsembleModel, tasks: list[str]) -> None:
        super().__init__()
        self.model = model.eval()
        self.tasks = tasks
        self.names = ["frame_lengths", "embedding", *tasks]

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(feats, lengths)
        encoded = output.encoded
        return (encoded.lengths, encoded.embedding, *(output.heads[name] for name in self.tasks))


def export_metadata(trained: TrainedModel, path: Path) -> dict[str, Any]:
    """The JSON metadata an export of the model file ``path`` carries (a loaded model file is
    described the same way)."""
    tasks = trained.tasks
    stats = trained.cmvn.global_stats
    frontend = trained.model.encoder.frontend
    upstream = frontend.upstream if trained.model.spec.kind == "upstream" else None
    return {
        "format": EXPORT_FORMAT,
        "config": trained.config.to_dict(),
        "inventories": {task.name: task.inventory for task in tasks},
        "cmvn": {
            "mode": trained.cmvn.mode,
            "global_stats": None if stats is None else stats.tolist(),
        },
        "feature_dim": trained.feature_dim,
        "feats_conf": trained.feats_conf,
        "input": dataclasses.asdict(trained.model.spec),
        "preparation": None if upstream is None else dataclasses.asdict(upstream.preparation),
        "trained_on": trained.trained_on,
        "outputs": ["frame_lengths", "embedding", *(task.name for task in tasks)],
        "source": str(path),
    }
