"""Emotion as the audio arrives: the timeline of :mod:`.timeline`, computed on a stream.

Samples are pushed in chunks of any size as they arrive (:meth:`EmotionStream.push`); each
push returns the segments that became final, each with its latency.

1. **Speech**: Silero VAD scores every 32 ms as the samples arrive, and the offline timeline's
   rules (a frame at or above the threshold starts speech, ``min_silence`` below the threshold
   minus 0.15 ends it, shorter than ``min_speech`` is dropped, ``speech_pad`` each side) are
   applied frame by frame, so a region closes ``min_silence`` after its speech stops.
2. **Windows**: a region is cut as offline; a window is classified as soon as it is sure to be
   one of the region's (it ends before the speech heard so far), the others when it closes.
3. **Segments**: when a region closes, its windows' posteriors are merged into segments as
   offline (:func:`.timeline.merge`).

Only the audio of windows still to classify is kept (a few seconds), so memory stays flat
however long the stream runs. A model normalised by speaker uses the statistics of the speech
heard so far, where the offline timeline uses all of the recording's: the first windows of a
stream may differ a little. Audio at another rate than 16 kHz is resampled chunk by chunk for
the detector (the offline timeline, block by block), so its scores may differ slightly too.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torchaudio

from speecheq.audio import float_samples
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import sum_stats, utterance_stats
from speecheq.inference.recognizer import Prediction, Recognizer
from speecheq.inference.timeline import (
    VAD_RATE,
    VAD_WINDOW,
    Segment,
    TimelineOptions,
    cut_windows,
    load_vad,
    merge,
)

HYSTERESIS = 0.15
"""Speech ends below the threshold minus this (Silero VAD's own rule)."""
MARGIN = 1.0
"""Seconds of audio kept behind the detector, for the padding of a region about to start."""


@dataclass(frozen=True)
class StreamSegment:
    """A finished segment and how long after its last sample arrived it came out."""

    segment: Segment
    latency: float

    def to_json(self) -> dict[str, Any]:
        return {**self.segment.to_json(), "latency": round(self.latency, 3)}


class SpeechDetector:
    """Regions of speech (samples at 16 kHz, padded) found frame by frame as audio arrives."""

    def __init__(self, options: TimelineOptions) -> None:
        self.model = load_vad()
        self.model.reset_states()
        self.threshold = options.threshold
        self.negative = max(options.threshold - HYSTERESIS, 0.01)
        self.min_speech = VAD_RATE * options.min_speech
        self.min_silence = VAD_RATE * options.min_silence
        self.pad = VAD_RATE * options.speech_pad
        self.scored = 0
        """Samples scored (whole frames)."""
        self.carry = np.zeros(0, dtype=np.float32)
        self.start: int | None = None
        """Raw start of the speech in progress."""
        self.silence_from = 0
        """Where the silence now ending the speech in progress began (0: none)."""
        self.pending: tuple[int, int] | None = None
        """(padded start, raw end) of a closed region whose end padding waits for the next."""

    @property
    def speech_start(self) -> int | None:
        """Padded start of the speech in progress."""
        if self.start is None:
            return None
        return self._padded_start(self.start)

    @property
    def sure_end(self) -> int:
        """The speech in progress lasts at least until here."""
        return self.silence_from or self.scored

    def push(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """Score 16 kHz samples; the regions (padded start, end) that became final."""
        self.carry = np.concatenate([self.carry, audio.astype(np.float32, copy=False)])
        usable = len(self.carry) // VAD_WINDOW * VAD_WINDOW
        closed: list[tuple[int, int]] = []
        with torch.inference_mode():
            for first in range(0, usable, VAD_WINDOW):
                chunk = torch.from_numpy(self.carry[first : first + VAD_WINDOW])
                closed += self._frame(float(self.model(chunk, VAD_RATE)))
        self.carry = self.carry[usable:]
        return closed + self._settle()

    def close(self, length: int) -> list[tuple[int, int]]:
        """The stream ended after ``length`` samples: the last regions."""
        closed: list[tuple[int, int]] = []
        if len(self.carry):
            chunk = np.zeros(VAD_WINDOW, dtype=np.float32)
            chunk[: len(self.carry)] = self.carry
            with torch.inference_mode():
                closed += self._frame(float(self.model(torch.from_numpy(chunk), VAD_RATE)))
            self.carry = self.carry[:0]
        if self.start is not None and length - self.start > self.min_speech:
            closed += self._keep(self.start, length)
        self.start = None
        if self.pending is not None:
            start, end = self.pending
            closed.append((start, int(min(length, end + self.pad))))
            self.pending = None
        return closed

    def _frame(self, probability: float) -> list[tuple[int, int]]:
        here = self.scored
        self.scored += VAD_WINDOW
        if probability >= self.threshold:
            self.silence_from = 0
            if self.start is None:
                self.start = here
            return []
        if self.start is None or probability >= self.negative:
            return []
        if not self.silence_from:
            self.silence_from = here
        if here - self.silence_from < self.min_silence:
            return []
        start, end = self.start, self.silence_from
        self.start, self.silence_from = None, 0
        return self._keep(start, end) if end - start > self.min_speech else []

    def _keep(self, start: int, end: int) -> list[tuple[int, int]]:
        """A region of speech kept: the previous one's end padded, this one waits for its own."""
        closed = []
        if self.pending is not None:
            previous_start, previous_end = self.pending
            gap = start - previous_end
            padded = previous_end + gap // 2 if gap < 2 * self.pad else previous_end + self.pad
            closed.append((previous_start, int(padded)))
        self.pending = (self._padded_start(start), end)
        return closed

    def _padded_start(self, start: int) -> int:
        if self.pending is not None and start - self.pending[1] < 2 * self.pad:
            return int(max(0, start - (start - self.pending[1]) // 2))
        return int(max(0, start - self.pad))

    def _settle(self) -> list[tuple[int, int]]:
        """The pending region, once no region can start close enough to change its padding."""
        if self.pending is None:
            return []
        start, end = self.pending
        horizon = end + 2 * self.pad
        if self.scored < horizon or (self.start is not None and self.start < horizon):
            return []
        self.pending = None
        return [(start, int(end + self.pad))]


@dataclass
class _Region:
    """A region of speech being classified: its windows so far and their predictions."""

    start: float
    windows: list[tuple[float, float, int]] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)

    @property
    def keep_from(self) -> float:
        """Audio before this is no longer needed (the last window may start at the last
        classified one)."""
        return self.windows[-1][0] if self.windows else self.start


class EmotionStream:
    """The emotion timeline of audio pushed as it arrives; see the module docstring."""

    def __init__(
        self,
        recognizer: Recognizer,
        rate: int,
        options: TimelineOptions | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if rate < 1:
            raise SpeechEQError(f"the stream's sample rate must be positive, got {rate}")
        self.recognizer = recognizer
        self.rate = rate
        self.options = options or TimelineOptions()
        self.clock = clock
        self.detector = SpeechDetector(self.options)
        self.resample = torchaudio.transforms.Resample(rate, VAD_RATE) if rate != VAD_RATE else None
        emotion = next((task for task in recognizer.tasks if task.name == "emotion"), None)
        self.classes = emotion.classes if emotion is not None else []
        self.received = 0
        """Samples received (at the stream's rate)."""
        self.audio = np.zeros(0, dtype=np.float32)
        self.audio_from = 0
        """Sample index of ``audio[0]``."""
        self.arrivals: deque[tuple[int, float]] = deque()
        """(samples received by then, wall time) of every chunk still buffered."""
        self.regions: dict[float, _Region] = {}
        """Regions of speech not yet finished, by start (seconds)."""
        self.stats: np.ndarray | None = None
        """CMVN statistics of the speech classified so far (per-speaker models)."""
        self.stats_until = 0.0

    def push(self, samples: np.ndarray) -> list[StreamSegment]:
        """Take the next samples (mono or ``(samples, channels)``, floats in [-1, 1] or
        integer PCM); the segments that became final."""
        mono = _mono(samples, self.received / self.rate)
        if not len(mono):
            return []
        self.audio = np.concatenate([self.audio, mono])
        self.received += len(mono)
        self.arrivals.append((self.received, self.clock()))
        audio = mono if self.resample is None else self.resample(torch.from_numpy(mono)).numpy()
        regions = self.detector.push(audio)
        finished = self._advance(regions)
        self._trim()
        return finished

    def close(self) -> list[StreamSegment]:
        """The stream ended: the segments of the speech still open."""
        length = round(self.received * VAD_RATE / self.rate)
        return self._advance(self.detector.close(length))

    def _advance(self, regions: list[tuple[int, int]]) -> list[StreamSegment]:
        finished = []
        for start, end in regions:
            finished += self._finish(start / VAD_RATE, end / VAD_RATE)
        start = self.detector.speech_start
        if start is not None:
            region = self.regions.setdefault(start / VAD_RATE, _Region(start / VAD_RATE))
            self._classify_ready(region)
        return finished

    def _classify_ready(self, region: _Region) -> None:
        """Classify the windows sure to be the region's: those ending before the speech heard."""
        sure = self.detector.sure_end / VAD_RATE
        if (sure - region.start) * VAD_RATE <= self.detector.min_speech:
            return
        window, hop = self.options.window, self.options.hop
        ready = []
        at = region.windows[-1][0] + hop if region.windows else region.start
        while at + window < sure and at + window <= self.received / self.rate:
            ready.append((at, at + window, 0))
            at += hop
        if ready:
            region.predictions += self._predict(ready, region.start)
            region.windows += ready

    def _finish(self, start: float, end: float) -> list[StreamSegment]:
        """A region closed: classify its remaining windows, merge them into segments."""
        region = self.regions.pop(start, None) or _Region(start)
        windows = cut_windows([(start, end)], self.options)
        done = len(region.windows)
        if windows[:done] != region.windows:  # eager windows are the first of the region's
            raise AssertionError("a streamed region's windows differ from its offline cut")
        predictions = region.predictions + self._predict(windows[done:], start)
        segments, _, _ = merge([(start, end)], windows, predictions, self.classes, self.options)
        now = self.clock()
        return [StreamSegment(s, now - self._arrival(s.end)) for s in segments]

    def _predict(self, windows: list[tuple[float, float, int]], since: float) -> list[Prediction]:
        """Predictions of windows of the region that starts at ``since``."""
        if not windows:
            return []
        feats = [(str(i), self._features(start, end)) for i, (start, end, _) in enumerate(windows)]
        if self.recognizer.per_speaker:
            self._gather_stats(max(self.stats_until, since), windows[-1][1])
        return [p for _, p in self.recognizer.predict_many(feats, self.stats)]

    def _features(self, start: float, end: float) -> np.ndarray:
        first = int(start * self.rate)
        count = max(1, int((end - start) * self.rate))
        samples = self.audio[first - self.audio_from : first - self.audio_from + count]
        return self.recognizer.features(samples, self.rate, f"the stream at {start:.2f} s")

    def _gather_stats(self, start: float, until: float) -> None:
        """CMVN statistics of the speech classified so far (each stretch once)."""
        if until - start < self.options.min_speech:
            return
        try:
            stats = utterance_stats(self._features(start, until))
        except SpeechEQError:  # too short for the features' first frame
            return
        self.stats = stats if self.stats is None else sum_stats([self.stats, stats])
        self.stats_until = until

    def _arrival(self, at: float) -> float:
        """Wall time at which the sample at ``at`` seconds arrived."""
        sample = int(at * self.rate)
        return next((wall for received, wall in self.arrivals if received >= sample), self.clock())

    def _trim(self) -> None:
        """Drop the audio no window can still need."""
        keep = self.received / self.rate - self.options.window - 2 * self.options.speech_pad
        keep -= MARGIN + self.options.min_silence
        keep = min([keep, *(region.keep_from for region in self.regions.values())])
        first = max(self.audio_from, int(keep * self.rate))
        if first > self.audio_from:
            self.audio = self.audio[first - self.audio_from :]
            self.audio_from = first
        while len(self.arrivals) > 1 and self.arrivals[1][0] <= self.audio_from:
            self.arrivals.popleft()


def _mono(samples: np.ndarray, at: float) -> np.ndarray:
    """Float mono samples, refusing non-finite ones."""
    who = f"the stream at {at:.2f} s"
    samples = float_samples(np.asarray(samples), who)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1:
        raise SpeechEQError(f"{who}: expected mono or (samples, channels) audio")
    if not np.isfinite(samples).all():
        raise SpeechEQError(f"{who}: the audio has samples that are not finite (NaN or inf)")
    return samples.astype(np.float32, copy=False)
