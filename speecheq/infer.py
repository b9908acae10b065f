"""Inference on raw audio files with a model file (``speecheq infer``).

Features are computed on the fly with the feature options the model was trained with (the
``conf/feats.conf`` text it carries), by the same function as stage 2. CMVN follows the model:
``global`` and ``corpus`` use the training statistics stored in the model (a lone file has no
corpus, and per-corpus CMVN falls back to them); ``speaker`` and ``utterance`` use
each file's own statistics (a lone file has no known speaker, so its own statistics stand in
for its speaker's); ``none`` uses none.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile
import torch

from speecheq.audio import read_audio
from speecheq.dataio.cmvn import Cmvn
from speecheq.dataio.dataset import Collator, Example
from speecheq.device import choose_device
from speecheq.errors import SpeechEQError
from speecheq.features import FeatureConfig, compute_features
from speecheq.fileio import atomic_write
from speecheq.modelfile import load_model

AUDIO_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        {f".{name.lower()}" for name in soundfile.available_formats() if name != "RAW"}
        | {".aif", ".opus"}
    )
)
"""File name endings of the formats the audio reader decodes (headerless RAW aside), as a
folder scan finds them."""


@dataclass(frozen=True)
class Inference:
    """The model's hypotheses for one audio file: task name -> value, plus emotion posteriors."""

    path: str
    values: dict[str, str]
    posteriors: dict[str, float]
    """Emotion class -> posterior (empty when the model has no emotion task)."""


def audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The audio files named, and those found (recursively, sorted) in the folders named."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise SpeechEQError(f"{item}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise SpeechEQError(f"{item}: no such file or folder")
    if not files:
        raise SpeechEQError("no audio files given")
    return files


def infer(
    model_path: str | Path,
    files: Sequence[Path],
    *,
    device: str = "auto",
    skip_bad: bool = False,
    skipped: dict[str, str] | None = None,
    advance: Callable[[int], None] | None = None,
) -> list[Inference]:
    """Run the model on each audio file; ``advance(1)`` after each.

    A file that cannot be read (missing, corrupt, not finite) stops the run with an error naming
    it, or, with ``skip_bad``, is left out and recorded in ``skipped`` (path -> why).
    """
    target = choose_device(device)
    trained = load_model(model_path, target)
    if trained.feats_conf is None:
        raise SpeechEQError(
            f"{model_path}: the model carries no feature options (its training data had no "
            "conf/feats.conf), so features of raw audio cannot be computed to match"
        )
    feature_config = FeatureConfig.parse(trained.feats_conf, f"{model_path} (feats.conf)")
    cmvn = trained.cmvn if trained.cmvn.mode in ("global", "corpus", "none") else Cmvn("utterance")
    emotion = trained.task("emotion")
    collate = Collator(trained.tasks)
    results = []
    for path in files:
        try:
            samples, rate = read_audio(str(path))
            feats = compute_features(samples, rate, feature_config, who=f"'{path}'")
        except SpeechEQError as err:
            if not skip_bad:
                raise
            if skipped is not None:
                skipped[str(path)] = str(err)
            if advance is not None:
                advance(1)
            continue
        if feats.shape[1] != trained.feature_dim:
            raise SpeechEQError(
                f"'{path}': features of dimension {feats.shape[1]}, the model expects "
                f"{trained.feature_dim}"
            )
        example = Example(str(path), cmvn(feats, None, str(path)), {})
        batch = collate([example]).to(target)
        with torch.inference_mode():
            output = trained.model(batch.feats, batch.lengths)
            values = {
                task.name: task.hypotheses(output)[task.decode_table][0] for task in trained.tasks
            }
            posteriors = {}
            if emotion is not None:
                probabilities = emotion.posteriors(output)[0].tolist()
                posteriors = dict(zip(emotion.inventory["classes"], probabilities, strict=True))
        results.append(Inference(str(path), values, posteriors))
        if advance is not None:
            advance(1)
    return results


def write_json(path: Path, results: Sequence[Inference]) -> None:
    """One object per file: ``path``, each task's value and the emotion posteriors."""
    records = [
        {"path": r.path, **r.values, **({"posteriors": r.posteriors} if r.posteriors else {})}
        for r in results
    ]
    with atomic_write(path) as out:
        json.dump(records, out, ensure_ascii=False, indent=2, allow_nan=False)
        out.write("\n")


def write_csv(path: Path, results: Sequence[Inference]) -> None:
    """One row per file: path, each task's value, then one ``p_<class>`` column per class."""
    tasks = list(results[0].values) if results else []
    classes = list(results[0].posteriors) if results else []
    with atomic_write(path) as out:
        writer = csv.writer(out)
        writer.writerow(["path", *tasks, *(f"p_{name}" for name in classes)])
        for r in results:
            posteriors = [f"{r.posteriors[name]:.4f}" for name in classes]
            writer.writerow([r.path, *(r.values[task] for task in tasks), *posteriors])
