"""``speecheq export``: a model file as an ONNX or TorchScript model with a dynamic batch and
time axis, carrying its tasks, classes, feature options and CMVN as metadata.

The exported network takes normalised features (``feats``: batch x frames x dim, float32) and
their ``lengths`` (int64), and returns the encoder's ``frame_lengths`` and every head's output
(see :class:`~speecheq.inference.backends.HeadOutputs`); ``speecheq infer`` and
:class:`~speecheq.inference.Recognizer` compute the features and run it (ONNX through
onnxruntime), so its posteriors match the model file's.

A model with its upstream inside exports to ONNX with the upstream's graph: it takes one
utterance of raw audio at a time (``feats``: 1 x samples x 1, prepared as the upstream's
feature extractor does; the samples axis dynamic), and the backends feed it utterance by
utterance. Whisper upstreams are refused (their log-mel front end is NumPy code outside the
network), and such models do not export to TorchScript.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from speecheq.errors import SpeechEQError
from speecheq.features.upstream import Upstream
from speecheq.fileio import atomic_write, make_folder
from speecheq.inference.backends import METADATA_KEY, HeadOutputs, export_metadata
from speecheq.modelfile import load_model

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}
EXAMPLE_FRAMES = 300
MIN_SAMPLES = 1600
"""The shortest raw audio an export with its upstream inside takes (0.1 s at 16 kHz)."""


def export_model(model_path: str | Path, out: str | Path, fmt: str) -> Path:
    """Write the model file ``model_path`` as ``fmt`` (``onnx`` or ``torchscript``) to ``out``."""
    model_path, out = Path(model_path), Path(out)
    if fmt not in FORMATS:
        raise SpeechEQError(f"--format must be onnx or torchscript, got '{fmt}'")
    if out.suffix != FORMATS[fmt]:
        raise SpeechEQError(f"{out}: a {fmt} model's file name ends with {FORMATS[fmt]}")
    make_folder(out.parent, for_path=out)  # a file in the way is named before the export's work
    trained = load_model(model_path)
    upstream = trained.model.spec.kind == "upstream"
    if upstream:
        check_exportable(trained.model.encoder.frontend.upstream, fmt, model_path)
    network = HeadOutputs(trained.model, [task.name for task in trained.tasks])
    metadata = json.dumps(export_metadata(trained, model_path))
    if upstream:  # one utterance of raw audio
        rate = trained.model.encoder.frontend.upstream.rate
        example = (torch.randn(1, 2 * rate, 1), torch.tensor([2 * rate]))
    else:
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
                _onnx(network, example, metadata, out, single=upstream)
            else:
                traced = torch.jit.trace(network, example)
                with atomic_write(out, "wb") as handle:
                    torch.jit.save(traced, handle, _extra_files={METADATA_KEY: metadata})
    finally:
        exporter_log.setLevel(level)
    return out


def _rename_clashes(graph: Any) -> None:
    """Rename the graph's inner values that bear an input's or output's name (WavLM's relative
    position ``embedding``, beside the output ``embedding``): ONNX names must be unique."""
    import onnx_ir

    reserved = {value.name for value in [*graph.inputs, *graph.outputs]}
    outer = {id(value) for value in [*graph.inputs, *graph.outputs]}
    for node in onnx_ir.traversal.RecursiveGraphIterator(graph):
        for value in node.outputs:
            if value.name in reserved and id(value) not in outer:
                value.name = f"{value.name}_{node.name or 'inner'}"


def check_exportable(upstream: Upstream, fmt: str, model_path: Path) -> None:
    """Refuse, with the reason, what cannot be exported of a model with its upstream inside."""
    if fmt != "onnx":
        raise SpeechEQError(
            f"{model_path}: a model that runs an upstream on raw audio exports to ONNX only "
            "(--format onnx)"
        )
    if upstream.family == "whisper":
        raise SpeechEQError(
            f"{model_path}: a Whisper upstream cannot be exported: its log-mel front end is "
            "transformers' feature extractor, NumPy code outside the network"
        )


def _onnx(
    network: HeadOutputs,
    example: tuple[torch.Tensor, torch.Tensor],
    metadata: str,
    out: Path,
    single: bool,
) -> None:
    """The ONNX export; ``single``: one utterance of raw audio at a time (batch 1), the
    samples axis dynamic."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise SpeechEQError(
            "exporting to ONNX needs onnx and onnxscript (pip install 'speecheq[onnx]')"
        ) from None
    if single:
        samples = torch.export.Dim("samples", min=MIN_SAMPLES, max=100_000_000)
        shapes: tuple[dict[int, Any], ...] = ({1: samples}, {})
    else:
        batch = torch.export.Dim("batch", min=1, max=1024)
        frames = torch.export.Dim("frames", min=7, max=1_000_000)
        shapes = ({0: batch, 1: frames}, {0: batch})
    program = torch.onnx.export(
        network,
        example,
        dynamo=True,
        input_names=["feats", "lengths"],
        output_names=network.names,
        dynamic_shapes=shapes,
        verbose=False,
    )
    _rename_clashes(program.model.graph)
    program.model.metadata_props[METADATA_KEY] = metadata
    with atomic_write(out, "wb") as handle:
        handle.write(program.model_proto.SerializeToString())
