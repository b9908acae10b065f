"""The device a command computes on, and its mixed-precision context."""

from __future__ import annotations

import contextlib

import torch

from speecheq.errors import SpeechEQError

DEVICES = ("auto", "cpu", "cuda")


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``."""
    if name not in DEVICES:
        raise SpeechEQError(f"--device must be auto, cpu or cuda, got '{name}'")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpeechEQError("--device cuda was asked for, but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def mixed_precision_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype of mixed precision on ``device`` (bf16 where CUDA supports it, else
    fp16), or None for float32 (no ``amp``, or a CPU)."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """The mixed-precision context of forward passes (a no-op in float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
