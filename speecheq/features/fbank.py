"""Decoded audio to features: Kaldi-compatible log-mel filterbanks (plus optional pitch).

:func:`compute_features` is the one path from samples to features, used by stage 2 and by
inference alike. The filterbank computation is that of ``torchaudio.compliance.kaldi.fbank``
(itself a port of Kaldi's ``compute-fbank-feats``), restructured for short utterances: the
window and the mel bank are built once per configuration instead of once per call, and the
squares of the spectrum's real and imaginary parts are summed inside the mel matrix product.
The result equals ``torchaudio.compliance.kaldi.fbank`` to float32 rounding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torchaudio
from torchaudio.compliance.kaldi import get_mel_banks

from speecheq.errors import SpeechEQError
from speecheq.features.config import FeatureConfig
from speecheq.features.pitch import pitch_features

INT16_SCALE = 32768.0
"""Kaldi computes features on samples at 16-bit integer scale, not in [-1, 1]."""

EPSILON = torch.finfo(torch.float32).eps


def compute_features(
    samples: np.ndarray, rate: int, config: FeatureConfig, *, who: str = "audio"
) -> np.ndarray:
    """Features (float32, frames x ``config.dim``) of mono samples in [-1, 1] at ``rate`` Hz.

    Audio at another rate than ``config.sample_frequency`` is resampled, as Kaldi does when
    allowed (downsampling by default; upsampling only with ``allow_upsample``). ``who`` names
    the input in errors, e.g. ``"utterance 'spk1-001' ('a.wav')"``: a forbidden rate change,
    audio shorter than one frame or samples that are not finite raise :class:`SpeechEQError`;
    no features that are not finite come out.
    """
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples (1-D), got shape {samples.shape}")
    target = int(config.sample_frequency)
    if rate != target:
        if rate < target and not config.allow_upsample:
            raise SpeechEQError(
                f"{who}: audio at {rate} Hz is below the feature sample frequency {target} Hz "
                "and upsampling is off (set --allow-upsample=true in the feature conf)"
            )
        if rate > target and not config.allow_downsample:
            raise SpeechEQError(
                f"{who}: audio at {rate} Hz is above the feature sample frequency {target} Hz "
                "and downsampling is off (set --allow-downsample=true in the feature conf)"
            )
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)) * INT16_SCALE
    if rate != target:
        waveform = resampler(rate, target)(waveform)
    if len(waveform) < config.window_size:
        raise SpeechEQError(
            f"{who}: {len(samples) / rate:.3f} s of audio is shorter than one "
            f"{config.frame_length:g} ms frame"
        )
    if not torch.isfinite(waveform).all():
        raise SpeechEQError(f"{who}: the audio has samples that are not finite (NaN or inf)")
    feats = fbank(waveform, config)
    if config.pitch:
        feats = torch.cat((feats, pitch_features(waveform, config)), dim=1)
    if not torch.isfinite(feats).all():
        raise SpeechEQError(f"{who}: its features are not finite")
    return feats.numpy()


@functools.lru_cache(maxsize=16)
def resampler(orig_rate: int, new_rate: int) -> torchaudio.transforms.Resample:
    """The (cached) torchaudio resampler from ``orig_rate`` to ``new_rate`` Hz."""
    return torchaudio.transforms.Resample(orig_rate, new_rate)


def frames(waveform: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """The frames of a 1-D waveform as a (frames x window size) view, Kaldi's way.

    With ``snip_edges`` only frames that fit are kept; without, the waveform is reflected at
    its ends and there is one frame per shift.
    """
    size, shift = config.window_size, config.window_shift
    count = config.num_frames(len(waveform))
    if not config.snip_edges:
        reversed_waveform = torch.flip(waveform, [0])
        pad = size // 2 - shift // 2
        if pad > 0:
            waveform = torch.cat((reversed_waveform[-pad:], waveform, reversed_waveform))
        else:
            waveform = torch.cat((waveform[-pad:], reversed_waveform))
    return waveform.as_strided((count, size), (shift, 1))


@functools.lru_cache(maxsize=8)
def _window(config: FeatureConfig) -> torch.Tensor:
    """The analysis window of ``config.window_type``, Kaldi's definitions."""
    size = config.window_size
    if config.window_type == "hanning":
        return torch.hann_window(size, periodic=False)
    if config.window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46)
    if config.window_type == "povey":
        return torch.hann_window(size, periodic=False).pow(0.85)
    if config.window_type == "rectangular":
        return torch.ones(size)
    step = 2 * math.pi / (size - 1)
    n = torch.arange(size, dtype=torch.float32)
    coeff = config.blackman_coeff
    return coeff - 0.5 * torch.cos(step * n) + (0.5 - coeff) * torch.cos(2 * step * n)


@functools.lru_cache(maxsize=8)
def _mel_matrix(config: FeatureConfig) -> torch.Tensor:
    """The mel filterbank as a (FFT bins x mel bins) matrix, to right-multiply spectra with.

    For power spectra each row is repeated, to right-multiply the interleaved squares of the
    real and imaginary parts (which sums them on the way).
    """
    banks, _ = get_mel_banks(
        config.num_mel_bins,
        config.padded_window_size,
        config.sample_frequency,
        config.low_freq,
        config.high_freq,
        config.vtln_low,
        config.vtln_high,
        config.vtln_warp,
    )
    matrix = torch.nn.functional.pad(banks.float(), (0, 1)).T
    return (matrix.repeat_interleave(2, dim=0) if config.use_power else matrix).contiguous()


def _log_energy(frames: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    energy = frames.square().sum(1).clamp_min(EPSILON).log()
    if config.energy_floor > 0:
        energy = energy.clamp_min(math.log(config.energy_floor))
    return energy


def fbank(waveform: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Log-mel filterbanks (frames x mel bins [+ energy]) of a waveform at 16-bit scale."""
    x = frames(waveform, config)
    if config.dither > 0:
        x = x + torch.randn(x.shape) * config.dither
    if config.remove_dc_offset:
        x = x - x.mean(dim=1, keepdim=True)
    if config.use_energy and config.raw_energy:
        energy = _log_energy(x, config)
    if config.preemphasis_coefficient != 0:
        previous = torch.cat((x[:, :1], x[:, :-1]), dim=1)
        x = x - config.preemphasis_coefficient * previous
    x = x * _window(config)
    if config.use_energy and not config.raw_energy:
        energy = _log_energy(x, config)
    squares = torch.view_as_real(torch.fft.rfft(x, n=config.padded_window_size)).square()
    if config.use_power:
        mel = squares.flatten(1) @ _mel_matrix(config)
    else:
        mel = squares.sum(dim=2).sqrt() @ _mel_matrix(config)
    if config.use_log_fbank:
        mel = mel.clamp_min(EPSILON).log()
    if config.use_energy:
        column = energy.unsqueeze(1)
        mel = torch.cat((mel, column) if config.htk_compat else (column, mel), dim=1)
    if config.subtract_mean:
        mel = mel - mel.mean(dim=0, keepdim=True)
    return mel


class FbankExtractor:
    """Computes filterbank features for stage 2, one utterance at a time on one thread."""

    chunk = 1
    """Utterances read before their features are computed."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config

    def threads(self, jobs: int) -> int:
        """Torch threads per job: one (small operations gain nothing from more)."""
        return 1

    def compute_batch(self, utterances: Sequence[tuple[np.ndarray, int, str]]) -> list[np.ndarray]:
        """Features of utterances ``(samples, rate, who)``, in order."""
        return [
            compute_features(samples, rate, self.config, who=who)
            for samples, rate, who in utterances
        ]
