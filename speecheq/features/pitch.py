"""A small pitch feature in torch, frame-aligned with the filterbanks (``--pitch=true``).

Three dimensions per frame, in the order and scales of Kaldi's
``compute-and-process-kaldi-pitch-feats``: a voicing feature from the normalized
cross-correlation (NCCF), the log-F0 minus its voicing-weighted mean over about 1.5 s, and
the delta of log-F0. The tracker is simpler than Kaldi's, so the values are close in kind but
not bit-identical to Kaldi's: the signal is low-passed at 1 kHz and resampled to 4 kHz, each
frame takes the lag of highest NCCF between 1/max-f0 and 1/min-f0 (refined to a fraction of a
sample by a parabola, with a slight preference for short lags against octave errors), and
log-F0 is median-smoothed over 5 frames instead of Viterbi-tracked. Everything is vectorized
over frames.
"""

from __future__ import annotations

import functools
import math

import torch
import torchaudio

from speecheq.features.config import FeatureConfig

ANALYSIS_RATE = 4000
"""Pitch is tracked on the signal low-passed at 1 kHz and resampled to this rate."""

LAG_PENALTY = 0.1
"""Subtracted from the NCCF at the longest lag (proportionally at shorter ones)."""

QUIET_FLOOR = 0.01
"""Frames this much quieter than the utterance's mean frame energy have their NCCF halved."""

MEDIAN_FRAMES = 5
NORMALIZATION_CONTEXT = 75
"""Frames on each side of the window whose weighted mean log-F0 is subtracted."""

DELTA_WINDOW = 2
POV_SCALE, PITCH_SCALE, DELTA_SCALE = 2.0, 2.0, 10.0


@functools.lru_cache(maxsize=8)
def _analysis_resampler(rate: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(rate, ANALYSIS_RATE, rolloff=0.5)


def track_pitch(waveform: torch.Tensor, config: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame F0 in Hz and the NCCF at its lag, one value per filterbank frame.

    ``waveform`` is 1-D at ``config.sample_frequency``. Unvoiced frames get an arbitrary F0
    and a low NCCF.
    """
    rate = int(config.sample_frequency)
    signal = _analysis_resampler(rate)(waveform.float())
    scale = ANALYSIS_RATE / rate
    count = config.num_frames(len(waveform))
    starts = torch.arange(count) * config.window_shift
    if not config.snip_edges:
        starts = starts - (config.window_size // 2 - config.window_shift // 2)
    starts = torch.round(starts * scale).long()
    width = max(2, round(config.window_size * scale))
    min_lag = max(1, math.floor(ANALYSIS_RATE / config.max_f0))
    max_lag = math.ceil(ANALYSIS_RATE / config.min_f0)
    span = width + max_lag + 1
    left = max(0, -int(starts.min()))
    right = max(0, int(starts.max()) + span - len(signal))
    padded = torch.nn.functional.pad(signal, (left, right))
    segments = padded.unfold(0, span, 1).index_select(0, starts + left)
    segments = segments - segments.mean(dim=1, keepdim=True)

    n_fft = 1 << (span - 1).bit_length()
    head = torch.fft.rfft(segments[:, :width], n=n_fft)
    correlation = torch.fft.irfft(head.conj() * torch.fft.rfft(segments, n=n_fft), n=n_fft)
    correlation = correlation[:, : max_lag + 2]
    energy = torch.nn.functional.pad(segments.square().cumsum(dim=1), (1, 0))
    shifted_energy = energy[:, width : width + max_lag + 2] - energy[:, : max_lag + 2]
    frame_energy = shifted_energy[:, :1]
    ballast = (QUIET_FLOOR * frame_energy.mean()) ** 2 + 1e-20
    nccf = correlation / torch.sqrt(frame_energy * shifted_energy + ballast)

    # A parabola through each lag and its neighbours gives the sub-sample peak and its height.
    before, middle, after = (nccf[:, min_lag + k : max_lag + 2 + k - 1] for k in (-1, 0, 1))
    curvature = before - 2 * middle + after
    offset = torch.where(curvature < 0, 0.5 * (before - after) / curvature.clamp_max(-1e-12), 0.0)
    offset = offset.clamp(-0.5, 0.5)
    height = (middle - 0.25 * (before - after) * offset).clamp(-1.0, 1.0)
    lags = torch.arange(min_lag, max_lag + 1) + offset
    best = (height - LAG_PENALTY * lags / max_lag).argmax(dim=1, keepdim=True)
    lag, peak = lags.gather(1, best).squeeze(1), height.gather(1, best).squeeze(1)
    return ANALYSIS_RATE / lag, peak


def pitch_features(waveform: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """(frames x 3): voicing feature, normalized log-F0, delta log-F0 (Kaldi's order)."""
    f0, nccf = track_pitch(waveform, config)
    log_f0 = _median_filter(f0.log(), MEDIAN_FRAMES)
    weights = _voicing_probability(nccf).double()
    window_sum = _moving_sum(weights * log_f0.double(), NORMALIZATION_CONTEXT)
    window_weight = _moving_sum(weights, NORMALIZATION_CONTEXT)
    normalized = log_f0 - (window_sum / window_weight).float()
    voicing = (1.0001 - nccf).pow(0.15) - 1.0
    return torch.stack(
        (POV_SCALE * voicing, PITCH_SCALE * normalized, DELTA_SCALE * _delta(log_f0)), dim=1
    )


def _voicing_probability(nccf: torch.Tensor) -> torch.Tensor:
    """Kaldi's mapping from |NCCF| to an approximate probability of voicing."""
    n = nccf.abs().clamp_max(1.0)
    log_odds = (
        -5.2
        + 5.4 * torch.exp(7.5 * (n - 1.0))
        + 4.8 * n
        - 2.0 * torch.exp(-10.0 * n)
        + 4.2 * torch.exp(20.0 * (n - 1.0))
    )
    return torch.sigmoid(log_odds)


def _median_filter(values: torch.Tensor, width: int) -> torch.Tensor:
    half = width // 2
    index = (torch.arange(len(values)).unsqueeze(1) + torch.arange(-half, half + 1)).clamp(
        0, len(values) - 1
    )
    return values[index].median(dim=1).values


def _moving_sum(values: torch.Tensor, context: int) -> torch.Tensor:
    """Sum over frames t - context .. t + context, truncated at the ends."""
    cumulative = torch.nn.functional.pad(values.cumsum(0), (1, 0))
    frames = torch.arange(len(values))
    high = (frames + context + 1).clamp_max(len(values))
    low = (frames - context).clamp_min(0)
    return cumulative[high] - cumulative[low]


def _delta(values: torch.Tensor) -> torch.Tensor:
    """Regression delta over ``DELTA_WINDOW`` frames on each side, edges replicated."""
    last = len(values) - 1
    frames = torch.arange(len(values))
    total = torch.zeros_like(values)
    for k in range(1, DELTA_WINDOW + 1):
        ahead = values[(frames + k).clamp_max(last)]
        behind = values[(frames - k).clamp_min(0)]
        total = total + k * (ahead - behind)
    return total / (2 * sum(k * k for k in range(1, DELTA_WINDOW + 1)))
