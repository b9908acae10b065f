"""What ``speecheq infer`` writes: JSON and CSV of utterances, and of a recording's timeline
also Kaldi ``segments`` + ``utt2emo`` and a PNG. Every file starts with the model's identity
(JSON: a ``model`` object; CSV: ``#`` comment lines)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write, write_matrix, write_table
from speecheq.inference.recognizer import Prediction
from speecheq.inference.timeline import Timeline


def _flat(values: Mapping[str, Any]) -> dict[str, Any]:
    """Nested values as columns: ``{"dimensional": {"arousal": 1}}`` -> ``dimensional_arousal``."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update({f"{name}_{key}": item for key, item in value.items()})
        else:
            flat[name] = " ".join(value) if isinstance(value, list) else value
    return flat


def _csv(
    path: Path, identity: Mapping[str, Any], header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    with atomic_write(path) as out:
        for key in ("model", "sha256", "classes", "trained_on"):
            out.write(f"# {key}: {json.dumps(identity.get(key), ensure_ascii=False)}\n")
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def _json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_write(path) as out:
        json.dump(data, out, ensure_ascii=False, indent=2, allow_nan=False)
        out.write("\n")


def write_predictions(
    results: Sequence[tuple[str, Prediction]],
    identity: Mapping[str, Any],
    *,
    json_path: Path | None = None,
    csv_path: Path | None = None,
) -> None:
    """One record (row) per utterance: its name, every task's value, the posteriors."""
    if json_path is not None:
        records = [{"file": name, **prediction.to_json()} for name, prediction in results]
        _json(json_path, {"model": identity, "results": records})
    if csv_path is not None:
        flat = [_flat(prediction.values) for _, prediction in results]
        columns = list(dict.fromkeys(key for row in flat for key in row))
        classes = list(identity.get("classes") or [])
        rows = [
            [
                name,
                *(row.get(c, "") for c in columns),
                *(round(p.posteriors.get(k, 0.0), 4) for k in classes),
            ]
            for (name, p), row in zip(results, flat, strict=True)
        ]
        _csv(csv_path, identity, ["file", *columns, *(f"p_{k}" for k in classes)], rows)


def recording_id(path: str) -> str:
    """A Kaldi recording id from a file name (its stem, spaces and odd characters as ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem) or "recording"


def output_keys(items: Sequence[tuple[str, str]], where: Path) -> dict[str, str]:
    """The name of each input's outputs (name, wav.scp value): a wav.scp's utterance id as it
    is, a file's :func:`recording_id`. Two inputs of one name (``a/call.wav``, ``b/call.wav``)
    are refused, naming both, before anything is written to ``where``."""
    keys: dict[str, str] = {}
    owners: dict[str, str] = {}
    for name, spec in items:
        key = name if name != spec else recording_id(spec)
        if owners.setdefault(key, name) != name:
            raise SpeechEQError(
                f"{owners[key]} and {name} would both write '{key}' in {where}; rename one, or "
                "give each its own output folder"
            )
        keys[name] = key
    return keys


def write_embeddings(embeddings: Sequence[tuple[str, np.ndarray]], out_dir: Path) -> list[Path]:
    """``embeddings.ark`` and ``.scp`` (Kaldi vectors), ``embeddings.npy`` (one row each, in
    the order given) and ``keys`` (that order)."""
    ark, scp = out_dir / "embeddings.ark", out_dir / "embeddings.scp"
    entries: dict[str, str] = {}
    with atomic_write(ark, "wb") as handle:
        for key, vector in embeddings:
            entries[key] = f"{ark.resolve()}:{write_matrix(handle, key, vector.astype(np.float32))}"
    write_table(scp, entries)
    with atomic_write(out_dir / "embeddings.npy", "wb") as handle:
        np.save(handle, np.stack([vector for _, vector in embeddings]).astype(np.float32))
    with atomic_write(out_dir / "keys") as handle:
        handle.writelines(f"{key}\n" for key, _ in embeddings)
    return [ark, scp, out_dir / "embeddings.npy", out_dir / "keys"]


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    """A timeline's duration, regions of speech, segments and speed, as JSON values."""
    return {
        "duration": round(timeline.duration, 3),
        "speech": [[round(s, 3), round(e, 3)] for s, e in timeline.speech],
        "segments": [segment.to_json() for segment in timeline.segments],
        "real_time_factor": round(timeline.real_time_factor, 1),
    }


def write_timeline(
    timeline: Timeline, identity: Mapping[str, Any], out_dir: Path, plot: bool
) -> list[Path]:
    """``<id>.json``, ``<id>.csv``, ``segments``, ``utt2emo`` (Kaldi; appended per recording
    by the caller through :func:`kaldi_tables`) and, with ``plot``, ``<id>.png``."""
    name = recording_id(timeline.path)
    written = [out_dir / f"{name}.json", out_dir / f"{name}.csv"]
    _json(written[0], {"model": identity, "recording": timeline.path, **timeline_json(timeline)})
    flat = [_flat(segment.values) for segment in timeline.segments]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    rows = [
        [round(s.start, 3), round(s.end, 3), s.emotion or "", *(row.get(c, "") for c in columns),
         *(round(s.posteriors.get(k, 0.0), 4) for k in timeline.classes)]
        for s, row in zip(timeline.segments, flat, strict=True)
    ]  # fmt: skip
    header = ["start", "end", "emotion", *columns, *(f"p_{k}" for k in timeline.classes)]
    _csv(written[1], identity, header, rows)
    if plot:
        from speecheq.inference.plot import plot_timeline

        written.append(out_dir / f"{name}.png")
        plot_timeline(timeline, written[-1])
    return written


def kaldi_tables(timelines: Sequence[Timeline], out_dir: Path) -> list[Path]:
    """Kaldi ``segments`` (``<segment> <recording> <start> <end>``) and ``utt2emo`` of every
    recording's segments."""
    segments: dict[str, str] = {}
    emotions: dict[str, str] = {}
    for timeline in timelines:
        recording = recording_id(timeline.path)
        for segment in timeline.segments:
            key = f"{recording}-{round(segment.start * 100):07d}-{round(segment.end * 100):07d}"
            segments[key] = f"{recording} {segment.start:.2f} {segment.end:.2f}"
            if segment.emotion is not None:
                emotions[key] = segment.emotion
    write_table(out_dir / "segments", segments)
    write_table(out_dir / "utt2emo", emotions)
    return [out_dir / "segments", out_dir / "utt2emo"]
