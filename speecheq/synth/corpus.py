"""Generate the synthetic mini corpus: eSpeak NG voices speaking everyday sentences with emotion.

The corpus directory holds ``wav/<speaker>/<utt>.wav`` (16 kHz mono 16-bit PCM) and
``metadata.tsv``, in the format :mod:`speecheq.corpora.mini` reads. Every file is written
atomically, the metadata last, so an interrupted run leaves no partial file and can simply be
run again. The same seed gives byte-identical files whatever the number of worker processes:
each utterance's audio depends only on its own plan.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio

from speecheq.audio import write_wav
from speecheq.corpora.mini import COLUMNS, METADATA
from speecheq.errors import SpeechEQError
from speecheq.fileio import atomic_write, make_folder
from speecheq.synth.espeak import EspeakProcess
from speecheq.synth.prosody import Rendering, Speaker, apply_effects, avd, render
from speecheq.synth.sentences import ENGLISH, MANDARIN

SAMPLE_RATE = 16000

SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk01", "m", "m1", pitch=46, rate=170),
    Speaker("spk02", "m", "m3", pitch=38, rate=180),
    Speaker("spk03", "m", "m4", pitch=54, rate=165),
    Speaker("spk04", "m", "m6", pitch=44, rate=185),
    Speaker("spk05", "f", "f1", pitch=52, rate=175),
    Speaker("spk06", "f", "f2", pitch=42, rate=168),
    Speaker("spk07", "f", "f3", pitch=48, rate=182),
    Speaker("spk08", "f", "f4", pitch=56, rate=172),
)
"""Eight voices, four male and four female, each with its own base pitch and speaking rate."""


@dataclass(frozen=True)
class Language:
    """A language of the corpus: its eSpeak NG voice, sentences, and how words are joined."""

    voice: str
    sentences: tuple[str, ...]
    joiner: str


LANGUAGES: dict[str, Language] = {
    "en": Language("en-us", ENGLISH, " "),
    "zh": Language("cmn", MANDARIN, ""),
}

EMOTION_ORDER: tuple[str, ...] = ("neutral", "happy", "angry", "sad", "fear")
STYLES: tuple[str, ...] = ("acted", "natural")


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: its labels, transcript and how to render it."""

    utt: str
    speaker: Speaker
    language: str
    emotion: str
    intensity: int
    style: str
    text: str
    avd: tuple[float, ...]
    rendering: Rendering

    @property
    def wav(self) -> str:
        """The audio file, relative to the corpus directory."""
        return f"wav/{self.speaker.id}/{self.utt}.wav"

    def metadata_row(self) -> list[str]:
        """The utterance's row of ``metadata.tsv``, in :data:`COLUMNS` order."""
        return [
            self.utt,
            self.speaker.id,
            self.speaker.gender,
            self.language,
            self.emotion,
            str(self.intensity),
            self.style,
            self.text,
            *(f"{value:.2f}" for value in self.avd),
            self.wav,
        ]


@dataclass(frozen=True)
class SynthReport:
    """What :func:`generate_corpus` wrote."""

    out_dir: Path
    utterances: int
    seconds: float
    wall_seconds: float
    emotions: dict[str, int]
    speakers: dict[str, int]

    @property
    def hours(self) -> float:
        return self.seconds / 3600


def make_utterance(
    index: int,
    speaker: Speaker,
    language: str,
    sentence: int,
    emotion: str,
    intensity: int,
    style: str,
    seed: int = 0,
) -> Utterance:
    """Plan utterance number ``index``: id ``<speaker>-<language>-<index>``, labels, rendering.

    Its random variation is drawn from a generator seeded by ``(seed, index)`` alone.
    """
    rng = np.random.default_rng([seed, index])
    lang = LANGUAGES[language]
    words = lang.sentences[sentence].split()
    rendering = render(speaker, lang.voice, words, lang.joiner, emotion, intensity, style, rng)
    return Utterance(
        utt=f"{speaker.id}-{language}-{index:04d}",
        speaker=speaker,
        language=language,
        emotion=emotion,
        intensity=intensity,
        style=style,
        text=lang.joiner.join(words),
        avd=avd(emotion, intensity, style, rng),
        rendering=rendering,
    )


def plan_corpus(num_utts: int, seed: int = 0) -> list[Utterance]:
    """Plan a corpus balanced over speakers, languages, styles, emotions and intensities.

    Utterance ``i`` has speaker ``i mod 8`` and emotion ``i mod 5``; a non-neutral emotion has
    intensity ``(i div 5) mod 3 + 1``; the language alternates and flips after each round of
    the eight speakers; the style alternates in pairs and flips every 16 utterances. So any
    prefix is nearly balanced on each factor, and the first 480 utterances are the full
    crossing of 8 speakers x 2 languages x 2 styles x 15 emotion-intensity slots (neutral
    takes 3 of them, so each emotion has a fifth). Sentences are dealt in a seeded order.
    """
    if num_utts < 1:
        raise SpeechEQError(f"the number of utterances must be at least 1, got {num_utts}")
    rng = np.random.default_rng(seed)
    orders = {code: rng.permutation(len(lang.sentences)) for code, lang in LANGUAGES.items()}
    dealt = Counter[str]()
    languages = list(LANGUAGES)
    utterances = []
    for index in range(num_utts):
        emotion = EMOTION_ORDER[index % 5]
        language = languages[(index + index // 8) % 2]
        order = orders[language]
        sentence = int(order[dealt[language] % len(order)])
        dealt[language] += 1
        utterances.append(
            make_utterance(
                index,
                SPEAKERS[index % 8],
                language,
                sentence,
                emotion,
                0 if emotion == "neutral" else (index // 5) % 3 + 1,
                STYLES[(index // 2 + index // 16) % 2],
                seed,
            )
        )
    return utterances


def render_audio(engine: EspeakProcess, utterance: Utterance) -> np.ndarray:
    """Synthesise, apply the emotion's effects and resample: int16 samples at 16 kHz."""
    rendering = utterance.rendering
    pcm = engine.synthesize(rendering.ssml, rendering.settings)
    audio = apply_effects(pcm / 32768.0, engine.sample_rate, rendering)
    audio = _resampler(engine.sample_rate)(torch.from_numpy(audio)).numpy()
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


@functools.cache
def _resampler(sample_rate: int) -> torchaudio.transforms.Resample:
    """A resampler to 16 kHz (its filter is computed once per process)."""
    return torchaudio.transforms.Resample(sample_rate, SAMPLE_RATE)


def synthesize_utterances(
    utterances: Sequence[Utterance],
    out_dir: str | Path,
    nj: int = 2,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Write each utterance's WAV under ``out_dir`` with ``nj`` processes; return total seconds.

    ``progress(n)`` is called as utterances are done. The workers are forked from a
    ``multiprocessing`` fork server, so a script that calls this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    if nj < 1:
        raise SpeechEQError(f"the number of processes must be at least 1, got {nj}")
    out_dir = Path(out_dir)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    jobs = [(utterance, out_dir) for utterance in utterances]
    seconds = 0.0
    with context.Pool(min(nj, len(jobs)), initializer=_start_worker) as pool:
        for duration in pool.imap_unordered(_write_utterance, jobs, chunksize=2):
            seconds += duration
            if progress is not None:
                progress(1)
    return seconds


def generate_corpus(
    out_dir: str | Path,
    num_utts: int = 600,
    seed: int = 0,
    nj: int = 2,
    progress: Callable[[int], None] | None = None,
) -> SynthReport:
    """Generate the corpus in ``out_dir``: the WAV files, then ``metadata.tsv``.

    ``nj`` worker processes synthesise in parallel; ``progress(n)`` is called as utterances
    are done. Returns counts, total audio duration and wall time.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    utterances = plan_corpus(num_utts, seed)
    make_folder(out_dir)
    for stale in out_dir.glob("wav/*/.*.tmp"):  # temporary files of a killed run
        stale.unlink()
    seconds = synthesize_utterances(utterances, out_dir, nj, progress)
    with atomic_write(out_dir / METADATA) as out:
        out.write("\t".join(COLUMNS) + "\n")
        for utterance in utterances:
            out.write("\t".join(utterance.metadata_row()) + "\n")
    return SynthReport(
        out_dir=out_dir,
        utterances=len(utterances),
        seconds=seconds,
        wall_seconds=time.perf_counter() - start,
        emotions=dict(sorted(Counter(u.emotion for u in utterances).items())),
        speakers=dict(sorted(Counter(u.speaker.id for u in utterances).items())),
    )


_engine: EspeakProcess | None = None
"""The worker process's eSpeak NG (set by :func:`_start_worker`)."""


def _start_worker() -> None:
    """Start a worker: one thread, its own eSpeak NG helper; Ctrl-C is the main process's job."""
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    _engine = EspeakProcess()


def _write_utterance(job: tuple[Utterance, Path]) -> float:
    utterance, out_dir = job
    assert _engine is not None, "worker not started"
    samples = render_audio(_engine, utterance)
    write_wav(out_dir / utterance.wav, samples, SAMPLE_RATE)
    return len(samples) / SAMPLE_RATE
