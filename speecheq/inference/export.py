"""``speecheq export``: a model file as an ONNX or TorchScript model with a dynamic batch and
time axis, carrying its tasks, classes, feature options and CMVN as metadata.

The exported network takes normalised features (``feats``: batch x frames x dim, float32) and
their ``lengths`` (int64), and returns the encoder's ``frame_lengths`` and every head's output
(see :class:`~speecheq.inference.backends.HeadOutputs`); ``speecheq infer`` and
:class:`~speecheq.inference.Recognizer` compute the features and run it (ONNX through
onnxruntime), so its posteriors match the model file's.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch

from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write
from speecheq.inference.backends import METADATA_KEY, HeadOutputs, export_metadata
from speecheq.modelfile import load_model

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}
EXAMPLE_FRAMES = 300


def export_model(model_path: str | Path, out: str | Path, fmt: str) -> Path:
    """Write the model file ``model_path`` as ``fmt`` (``onnx`` or ``torchscript``) to ``out``."""
    model_path, out = Path(model_path), Path(out)
    if fmt not in FORMATS:
        raise SpeechEQError(f"--format must be onnx or torchscript, got '{fmt}'")
    if out.suffix != FORMATS[fmt]:
        raise SpeechEQError(f"{out}: a {fmt} model's file name ends with {FORMATS[fmt]}")
    trained = load_model(model_path)
    if trained.model.spec.kind == "upstream":
        raise SpeechEQError(
            f"{model_path}: a model that runs an upstream on raw audio cannot be exported yet; "
            "train one on upstream features (speecheq feats --type ssl) to export it"
        )
    network = HeadOutputs(trained.model, [task.name for task in trained.tasks])
    metadata = json.dumps(export_metadata(trained, model_path))
    example = (
        torch.randn(2, EXAMPLE_FRAMES, trained.feature_dim),
        torch.tensor([EXAMPLE_FRAMES, 200]),
    )
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # its notes on operators this model does not use
    try:
        with warnings.catch_warnings():  # the exporters' notes on deprecations
            warnings.simplefilter("ignore")
            if fmt == "onnx":
                _onnx(network, example, metadata, out)
            else:
                traced = torch.jit.trace(network, example)
                with atomic_write(out, "wb") as handle:
                    torch.jit.save(traced, handle, _extra_files={METADATA_KEY: metadata})
    finally:
        exporter_log.setLevel(level)
    return out


def _onnx(
    network: HeadOutputs, example: tuple[torch.Tensor, torch.Tensor], metadata: str, out: Path
) -> None:
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise SpeechEQError(
            "exporting to ONNX needs onnx and onnxscript (pip install 'speecheq[onnx]')"
        ) from None
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=7, max=1_000_000)
    program = torch.onnx.export(
        network,
        example,
        dynamo=True,
        input_names=["feats", "lengths"],
        output_names=network.names,
        dynamic_shapes=({0: batch, 1: frames}, {0: batch}),
        verbose=False,
    )
    program.model.metadata_props[METADATA_KEY] = metadata
    with atomic_write(out, "wb") as handle:
        handle.write(program.model_proto.SerializeToString())
