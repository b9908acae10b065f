"""Emotion rendering: how an emotion, its intensity and a speaking style change a voice.

An emotion is a departure from neutral speech (:class:`EmotionProfile`): eSpeak NG's pitch
level, pitch range and speaking rate, then signal processing on its output (loudness, spectral
tilt, tremolo, jitter, breath noise). The departure is scaled by a *strength*: intensity 1, 2,
3 give a third, two thirds and all of it in the ``acted`` style, half that in the ``natural``
style, which also varies more at random and adds pitch declination, small pauses and rate
drift between phrases. Arousal, valence and dominance move from neutral (3, 3, 3) toward the
emotion's centroid by the same strength.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import torch
import torchaudio.functional as AF

from speecheq.synth.espeak import VoiceSettings


@dataclass(frozen=True)
class EmotionProfile:
    """How an emotion departs from neutral speech at full strength (acted, intensity 3).

    ``pitch`` and ``pitch_range`` are in eSpeak NG units (a pitch unit is about 0.15
    semitone); ``rate`` multiplies the speaking rate; ``gain_db`` is loudness; ``tilt_db`` is
    the gain of a high shelf at 1.5 kHz (vocal effort); ``tremolo`` is an amplitude-modulation
    depth; ``jitter`` the standard deviation of a fast relative pitch perturbation; ``breath``
    the level of breath noise relative to the speech envelope; ``avd`` the (arousal, valence,
    dominance) centroid on a 1..5 scale.
    """

    pitch: float
    pitch_range: float
    rate: float
    gain_db: float
    tilt_db: float
    tremolo: float
    jitter: float
    breath: float
    avd: tuple[float, float, float]


EMOTIONS: dict[str, EmotionProfile] = {
    "neutral": EmotionProfile(0, 0, 1.0, 0, 0, 0, 0, 0, (3.0, 3.0, 3.0)),
    "happy": EmotionProfile(24, 30, 1.12, 4, 4, 0, 0, 0, (4.0, 4.6, 3.6)),
    "angry": EmotionProfile(10, 20, 1.18, 10, 9, 0, 0.006, 0, (4.6, 1.6, 4.5)),
    "sad": EmotionProfile(-16, -35, 0.72, -8, -9, 0, 0, 0.35, (1.6, 1.6, 1.7)),
    "fear": EmotionProfile(30, -10, 1.3, -3, -2, 0.35, 0.012, 0.5, (4.1, 1.6, 1.5)),
}
"""The five emotions of the corpus; ``fear`` (not surprise) is the fifth."""

INTENSITY_STRENGTH: dict[int, float] = {0: 0.0, 1: 1 / 3, 2: 2 / 3, 3: 1.0}
STYLE_STRENGTH: dict[str, float] = {"acted": 1.0, "natural": 0.5}
STYLE_SPREAD: dict[str, float] = {"acted": 1.0, "natural": 2.5}
"""How much each style varies at random (pitch, range, rate, loudness), relative to acted."""

BASE_GAIN_DB = -9.0
"""Level of neutral speech relative to eSpeak NG's output, leaving headroom for loud speech."""

SHELF_HZ = 1500.0


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: an eSpeak NG voice variant with its own base pitch and rate."""

    id: str
    gender: str
    variant: str
    pitch: int
    rate: int


@dataclass(frozen=True)
class Rendering:
    """Everything needed to produce one utterance's audio, decided before synthesis."""

    settings: VoiceSettings
    ssml: str
    gain_db: float
    tilt_db: float
    tremolo: float
    tremolo_hz: float
    jitter: float
    breath: float
    noise_seed: int


def strength(intensity: int, style: str) -> float:
    """The share of an emotion's full departure from neutral used at this intensity and style."""
    return INTENSITY_STRENGTH[intensity] * STYLE_STRENGTH[style]


def render(
    speaker: Speaker,
    voice: str,
    words: Sequence[str],
    joiner: str,
    emotion: str,
    intensity: int,
    style: str,
    rng: np.random.Generator,
) -> Rendering:
    """Decide the voice settings, SSML and effects of one utterance (``voice``: eSpeak language).

    ``words`` are the sentence's words, joined by ``joiner`` (a space, or nothing for Mandarin).
    """
    profile = EMOTIONS[emotion]
    share = strength(intensity, style)
    spread = STYLE_SPREAD[style]
    pitch = speaker.pitch + share * profile.pitch + rng.normal(0, 1.2 * spread)
    pitch_range = 50 + share * profile.pitch_range + rng.normal(0, 2 * spread)
    rate = speaker.rate * (1 + share * (profile.rate - 1)) * (1 + rng.normal(0, 0.02 * spread))
    settings = VoiceSettings(
        voice=f"{voice}+{speaker.variant}",
        rate=int(np.clip(round(rate), 80, 450)),
        pitch=_clip_percent(pitch),
        pitch_range=_clip_percent(pitch_range),
    )
    if style == "natural":
        ssml = _natural_ssml(words, joiner, settings, rng)
    else:
        ssml = f"<speak>{escape(joiner.join(words))}</speak>"
    return Rendering(
        settings=settings,
        ssml=ssml,
        gain_db=share * profile.gain_db + rng.normal(0, 0.5 * spread),
        tilt_db=share * profile.tilt_db,
        tremolo=share * profile.tremolo,
        tremolo_hz=rng.uniform(5.0, 7.5),
        jitter=share * profile.jitter,
        breath=share * profile.breath,
        noise_seed=int(rng.integers(2**32)),
    )


def avd(emotion: str, intensity: int, style: str, rng: np.random.Generator) -> tuple[float, ...]:
    """Arousal, valence, dominance: neutral moved toward the emotion's centroid, plus jitter."""
    centroid = np.array(EMOTIONS[emotion].avd)
    values = 3.0 + strength(intensity, style) * (centroid - 3.0) + rng.normal(0, 0.08, 3)
    return tuple(round(float(value), 2) for value in np.clip(values, 1.0, 5.0))


def apply_effects(samples: np.ndarray, sample_rate: int, rendering: Rendering) -> np.ndarray:
    """Jitter, spectral tilt, tremolo, breath noise and loudness, then a soft limiter."""
    rng = np.random.default_rng(rendering.noise_seed)
    audio = samples.astype(np.float64)
    if rendering.jitter > 0:
        audio = _jitter(audio, sample_rate, rendering.jitter, rng)
    if rendering.tilt_db != 0:
        audio = AF.treble_biquad(
            torch.from_numpy(audio), sample_rate, rendering.tilt_db, SHELF_HZ
        ).numpy()
    if rendering.tremolo > 0:
        t = np.arange(len(audio)) / sample_rate
        phase = rng.uniform(0, 2 * np.pi)
        audio = audio * (
            1 + rendering.tremolo * np.sin(2 * np.pi * rendering.tremolo_hz * t + phase)
        )
    if rendering.breath > 0:
        audio = audio + rendering.breath * _breath_noise(audio, sample_rate, rng)
    audio = audio * 10 ** ((BASE_GAIN_DB + rendering.gain_db) / 20)
    return np.tanh(audio).astype(np.float32)


def _clip_percent(value: float) -> int:
    return int(np.clip(round(value), 0, 100))


def _natural_ssml(
    words: Sequence[str], joiner: str, settings: VoiceSettings, rng: np.random.Generator
) -> str:
    """Phrases with falling pitch (declination), drifting rate and short pauses between them.

    Two or three phrases of two words or more, cut near even positions.
    """
    num_phrases = min(int(rng.integers(2, 4)), max(1, len(words) // 2))
    bounds = [round(len(words) * index / num_phrases) for index in range(num_phrases + 1)]
    for index in range(1, num_phrases):
        moved = bounds[index] + int(rng.integers(-1, 2))
        if moved - bounds[index - 1] >= 2 and bounds[index + 1] - moved >= 2:
            bounds[index] = moved
    declination = rng.uniform(6, 14)
    drift = 1.0
    parts = []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        fall = declination * index / max(1, num_phrases - 1)
        pitch = _clip_percent(settings.pitch - fall)
        if index:
            parts.append(f'<break time="{int(rng.uniform(60, 260))}ms"/>')
            drift *= 1 + rng.normal(0, 0.07)
        phrase = escape(joiner.join(words[start:end]))
        parts.append(f'<prosody pitch="{pitch}" rate="{round(100 * drift)}%">{phrase}</prosody>')
    return f"<speak>{''.join(parts)}</speak>"


def _jitter(
    audio: np.ndarray, sample_rate: int, amount: float, rng: np.random.Generator
) -> np.ndarray:
    """Perturb the local playback speed (hence pitch) by a fast random signal of std ``amount``."""
    noise = _moving_average(rng.standard_normal(len(audio)), int(0.008 * sample_rate))
    speed = 1 + amount * noise / noise.std()
    positions = np.cumsum(speed) - speed[0]
    positions = positions[positions <= len(audio) - 1]
    return np.interp(positions, np.arange(len(audio)), audio)


def _breath_noise(audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """High-passed noise following the speech envelope (25 ms moving average of |audio|)."""
    noise = AF.highpass_biquad(
        torch.from_numpy(rng.standard_normal(len(audio))), sample_rate, 1800.0
    ).numpy()
    return 2.0 * _moving_average(np.abs(audio), int(0.025 * sample_rate)) * noise


def _moving_average(signal: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples, the same length as ``signal``."""
    padded = np.pad(signal, (width // 2, width - 1 - width // 2))
    sums = np.concatenate(([0.0], np.cumsum(padded)))
    return (sums[width:] - sums[:-width]) / width
