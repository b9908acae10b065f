"""Long recordings: where there is speech, and which emotion it carries, over time.

1. **Speech**: the recording is read in blocks (memory stays flat however long it is) and a
   voice activity detector (Silero VAD, whose model ships in its wheel) scores every 32 ms;
   its regions of speech come out.
2. **Windows**: each region is cut into windows of ``window`` seconds every ``hop`` seconds (a
   region shorter than a window is one window), read from the file one at a time and
   classified in batches. A model normalised by speaker uses the statistics of all the
   recording's speech (one recording standing in for one speaker).
3. **Segments**: within each region, every 0.1 s takes the mean posteriors of the windows
   covering it; runs of the same most likely emotion are segments, and a run shorter than
   ``min_segment`` seconds joins its more similar neighbour. A segment reports its start, end,
   emotion, mean posteriors and the mean of the other tasks' values (intensity rounded).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio

from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import sum_stats, utterance_stats
from speecheq.fileio import path_problem
from speecheq.inference.recognizer import Prediction, Recognizer

VAD_RATE = 16000
VAD_WINDOW = 512
CELL = 0.1
"""Seconds per step of the posterior track."""
BLOCK_SECONDS = 30.0
BATCH_WINDOWS = 32


@dataclass(frozen=True)
class TimelineOptions:
    """How speech is found and cut (seconds, but the detector's threshold)."""

    window: float = 3.0
    hop: float = 1.0
    min_segment: float = 1.0
    threshold: float = 0.5
    """Speech probability above which a 32 ms frame starts speech."""
    min_speech: float = 0.25
    min_silence: float = 0.3
    speech_pad: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.hop <= self.window:
            raise SpeechEQError(f"--hop must be in (0, --window], got {self.hop} and {self.window}")
        if self.min_segment < 0 or not 0 < self.threshold < 1:
            raise SpeechEQError("--min-segment must not be negative, --vad-threshold in (0, 1)")


@dataclass(frozen=True)
class Segment:
    """A stretch of speech with one emotion."""

    start: float
    end: float
    emotion: str | None
    posteriors: dict[str, float]
    values: dict[str, Any] = field(default_factory=dict)
    """The other tasks' values, averaged over the segment."""

    def to_json(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "emotion": self.emotion,
            **self.values,
            "posteriors": {name: round(p, 4) for name, p in self.posteriors.items()},
        }


@dataclass
class Timeline:
    """The segments of one recording, the track they were cut from, and its waveform's outline."""

    path: str
    duration: float
    speech: list[tuple[float, float]]
    segments: list[Segment]
    classes: list[str]
    track_times: np.ndarray
    """Centre of every 0.1 s step of speech."""
    track: np.ndarray
    """``(steps, classes)`` mean emotion posteriors at those times."""
    envelope: np.ndarray
    """``(bins, 3)``: time, lowest and highest sample of each bin of the waveform."""
    seconds: float = 0.0
    """Wall time taken."""

    @property
    def real_time_factor(self) -> float:
        return self.duration / self.seconds if self.seconds else float("inf")


def timeline_of(
    recognizer: Recognizer, path: str | Path, options: TimelineOptions | None = None
) -> Timeline:
    """The emotion timeline of the recording at ``path`` by ``recognizer`` (see the module
    docstring; ``options``: the defaults unless given)."""
    began = time.perf_counter()
    options = options or TimelineOptions()
    path = Path(path)
    problem = path_problem(path)
    if problem:
        raise SpeechEQError(f"audio file '{path}' {problem}")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise SpeechEQError(f"'{path}': cannot decode it ({err})") from None
    duration = info.frames / info.samplerate
    speech, envelope = find_speech(path, info.samplerate, info.frames, options)
    stats = _speech_stats(recognizer, path, speech) if recognizer.per_speaker and speech else None
    windows = cut_windows(speech, options)
    predictions = _classify(recognizer, path, windows, stats)
    emotion = next((task for task in recognizer.tasks if task.name == "emotion"), None)
    classes = emotion.classes if emotion is not None else []
    segments, times, track = merge(speech, windows, predictions, classes, options)
    return Timeline(
        str(path), duration, speech, segments, classes, times, track, envelope,
        time.perf_counter() - began,
    )  # fmt: skip


def timelines_of(
    recognizer: Recognizer,
    items: Sequence[tuple[str, str]],
    options: TimelineOptions,
    skip_bad: bool,
    on_skip: Callable[[str, str], None],
) -> Iterator[Timeline]:
    """The timeline of each recording of ``items`` (``(name, audio file)``, as
    :func:`~speecheq.inference.inputs.audio_inputs` gives them; a ``wav.scp`` command is
    refused); with ``skip_bad``, an unreadable one is passed to ``on_skip`` with the reason
    and left out (else its error is raised); none readable is an error."""
    for name, spec in items:
        if spec != name or spec.rstrip().endswith("|"):
            raise SpeechEQError(f"{name}: a timeline reads audio files, not wav.scp commands")
    made = 0
    for _, spec in items:
        try:
            timeline = timeline_of(recognizer, spec, options)
        except SpeechEQError as err:
            if not skip_bad:
                raise
            on_skip(spec, str(err))
            continue
        made += 1
        yield timeline
    if not made:
        raise SpeechEQError("no recording could be read")


def _blocks(path: Path, frames: int = 0, start: int = 0) -> Iterator[np.ndarray]:
    """Mono blocks of the file (from ``start``, ``frames`` of them; 0: to the end)."""
    rate = soundfile.info(str(path)).samplerate
    blocksize = int(BLOCK_SECONDS * rate)
    stop = start + frames if frames else None
    for block in soundfile.blocks(
        str(path), blocksize=blocksize, dtype="float32", always_2d=True, start=start, stop=stop
    ):
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        if not np.isfinite(mono).all():
            raise SpeechEQError(f"'{path}': the audio has samples that are not finite (NaN or inf)")
        yield mono


def find_speech(
    path: Path, rate: int, frames: int, options: TimelineOptions
) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Regions of speech (seconds) and the waveform's outline, reading the file in blocks."""
    from silero_vad import get_speech_timestamps_from_probs

    model = load_vad()
    bins = max(1, int(rate * max(0.01, frames / rate / 5000)))
    envelope: list[tuple[float, float, float]] = []
    carry = np.zeros(0, dtype=np.float32)
    probs: list[float] = []
    position = 0
    resample = torchaudio.transforms.Resample(rate, VAD_RATE) if rate != VAD_RATE else None
    with torch.inference_mode():
        for block in _blocks(path):
            for start in range(0, len(block), bins):
                part = block[start : start + bins]
                envelope.append(((position + start) / rate, float(part.min()), float(part.max())))
            position += len(block)
            audio = block if resample is None else resample(torch.from_numpy(block)).numpy()
            carry = np.concatenate([carry, audio])
            usable = len(carry) // VAD_WINDOW * VAD_WINDOW
            for start in range(0, usable, VAD_WINDOW):
                chunk = torch.from_numpy(carry[start : start + VAD_WINDOW])
                probs.append(float(model(chunk, VAD_RATE)))
            carry = carry[usable:]
        if len(carry):
            chunk = np.zeros(VAD_WINDOW, dtype=np.float32)
            chunk[: len(carry)] = carry
            probs.append(float(model(torch.from_numpy(chunk), VAD_RATE)))
    length = round(frames * VAD_RATE / rate)
    regions = get_speech_timestamps_from_probs(
        probs,
        threshold=options.threshold,
        sampling_rate=VAD_RATE,
        min_speech_duration_ms=int(1000 * options.min_speech),
        min_silence_duration_ms=int(1000 * options.min_silence),
        speech_pad_ms=int(1000 * options.speech_pad),
        audio_length_samples=length,
    )
    speech = [(r["start"] / VAD_RATE, min(r["end"], length) / VAD_RATE) for r in regions]
    return speech, np.array(envelope, dtype=np.float32).reshape(-1, 3)


def load_vad() -> torch.nn.Module:
    """Silero VAD's model, from the wheel (importing it sets torch's threads to 1: undone)."""
    threads = torch.get_num_threads()
    with warnings.catch_warnings():  # torch.jit.load's deprecation note
        warnings.simplefilter("ignore")
        from silero_vad import load_silero_vad

        model = load_silero_vad(onnx=False)
    torch.set_num_threads(threads)
    return model


def cut_windows(
    speech: Sequence[tuple[float, float]], options: TimelineOptions
) -> list[tuple[float, float, int]]:
    """``(start, end, region)`` of every window of every region of speech."""
    windows = []
    for index, (start, end) in enumerate(speech):
        if end - start <= options.window:
            windows.append((start, end, index))
            continue
        at = start
        while at + options.window < end:
            windows.append((at, at + options.window, index))
            at += options.hop
        windows.append((end - options.window, end, index))
    return windows


def _read(path: Path, start: float, end: float) -> tuple[np.ndarray, int]:
    with soundfile.SoundFile(str(path)) as handle:
        rate = handle.samplerate
        handle.seek(int(start * rate))
        samples = handle.read(max(1, int((end - start) * rate)), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def _speech_stats(
    recognizer: Recognizer, path: Path, speech: Sequence[tuple[float, float]]
) -> np.ndarray:
    """CMVN statistics of all the speech of the recording (regions read in blocks)."""
    stats = []
    rate = soundfile.info(str(path)).samplerate
    for start, end in speech:
        first = int(start * rate)
        for block in _blocks(path, int((end - start) * rate), first):
            try:
                stats.append(utterance_stats(recognizer.features(block, rate, f"'{path}'")))
            except SpeechEQError:  # a last block shorter than the features' first frame
                continue
    return sum_stats(stats)


def _classify(
    recognizer: Recognizer,
    path: Path,
    windows: Sequence[tuple[float, float, int]],
    stats: np.ndarray | None,
) -> list[Prediction]:
    predictions: list[Prediction] = []
    for first in range(0, len(windows), BATCH_WINDOWS):
        batch = []
        for index, (start, end, _) in enumerate(windows[first : first + BATCH_WINDOWS]):
            samples, rate = _read(path, start, end)
            batch.append(
                (
                    str(first + index),
                    recognizer.features(samples, rate, f"'{path}' at {start:.2f} s"),
                )
            )
        predictions.extend(prediction for _, prediction in recognizer.predict_many(batch, stats))
    return predictions


def merge(
    speech: Sequence[tuple[float, float]],
    windows: Sequence[tuple[float, float, int]],
    predictions: Sequence[Prediction],
    classes: Sequence[str],
    options: TimelineOptions,
) -> tuple[list[Segment], np.ndarray, np.ndarray]:
    """Segments of like emotion, and the posterior track they come from (module docstring)."""
    segments: list[Segment] = []
    times: list[np.ndarray] = []
    tracks: list[np.ndarray] = []
    for index, (start, end) in enumerate(speech):
        cells = max(1, round((end - start) / CELL))
        edges = np.linspace(start, end, cells + 1)
        covering = [(w, p) for w, p in zip(windows, predictions, strict=True) if w[2] == index]
        posterior = np.zeros((cells, len(classes)))
        numbers: dict[str, np.ndarray] = {}
        count = np.zeros(cells)
        centres = (edges[:-1] + edges[1:]) / 2
        for (w_start, w_end, _), prediction in covering:
            inside = (centres >= w_start) & (centres <= w_end)
            count += inside
            posterior[inside] += [prediction.posteriors.get(name, 0.0) for name in classes]
            for name, value in _numbers(prediction).items():
                numbers.setdefault(name, np.zeros((cells, np.size(value))))[inside] += value
        count = np.maximum(count, 1)
        posterior /= count[:, None]
        numbers = {name: value / count[:, None] for name, value in numbers.items()}
        runs = _runs(
            posterior.argmax(axis=1) if classes else np.zeros(cells, int), posterior, options
        )
        for first, last in runs:
            mean = posterior[first:last].mean(axis=0)
            values = {
                name: _value(name, value[first:last].mean(axis=0))
                for name, value in numbers.items()
            }
            segments.append(
                Segment(
                    float(edges[first]),
                    float(edges[last]),
                    classes[int(mean.argmax())] if classes else None,
                    dict(zip(classes, mean.tolist(), strict=True)),
                    values,
                )
            )
        times.append(centres)
        tracks.append(posterior)
    track = np.concatenate(tracks) if tracks else np.zeros((0, len(classes)))
    return segments, np.concatenate(times) if times else np.zeros(0), track


def _numbers(prediction: Prediction) -> dict[str, np.ndarray]:
    """The numeric values of a prediction's other tasks (intensity, dimensional)."""
    found = {}
    for name, value in prediction.values.items():
        if isinstance(value, bool) or name == "emotion":
            continue
        if isinstance(value, int | float):
            found[name] = np.array([float(value)])
        elif isinstance(value, dict) and all(isinstance(v, float) for v in value.values()):
            found[name] = np.array(list(value.values()))
    return found


def _value(name: str, mean: np.ndarray) -> Any:
    from speecheq.labels import AVD_DIMENSIONS

    if name == "intensity":
        return round(float(mean[0]))
    if len(mean) == len(AVD_DIMENSIONS):
        return {dim: round(float(x), 4) for dim, x in zip(AVD_DIMENSIONS, mean, strict=True)}
    return round(float(mean[0]), 4)


def _runs(
    labels: np.ndarray, posterior: np.ndarray, options: TimelineOptions
) -> list[tuple[int, int]]:
    """Runs of equal labels (cell ranges); a run shorter than ``min_segment`` joins the
    neighbour whose mean posteriors are closer to its own."""
    runs = []
    start = 0
    for cell in range(1, len(labels) + 1):
        if cell == len(labels) or labels[cell] != labels[start]:
            runs.append((start, cell))
            start = cell
    shortest = max(1, round(options.min_segment / CELL))
    while len(runs) > 1:
        index = min(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
        first, last = runs[index]
        if last - first >= shortest:
            break
        own = posterior[first:last].mean(axis=0)
        neighbours = [n for n in (index - 1, index + 1) if 0 <= n < len(runs)]
        closest = min(
            neighbours,
            key=lambda n: np.abs(posterior[runs[n][0] : runs[n][1]].mean(axis=0) - own).sum(),
        )
        merged = (min(first, runs[closest][0]), max(last, runs[closest][1]))
        runs[min(index, closest)] = merged
        del runs[max(index, closest)]
    return runs
