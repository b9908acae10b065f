"""Device choice, mixed precision and the DDP process group (from ``torchrun``'s environment).

Under ``torchrun`` each process reads its rank from ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and
joins a process group: NCCL on CUDA (one GPU per local rank), gloo on CPU. A plain run is a
world of one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import distributed as dist
from torch import nn

from speecheq.errors import SpeechEQError


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its device, rank and world size, and its precision."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    amp_dtype: torch.dtype | None = None
    """The autocast dtype (CUDA with ``optim.amp``), or None for float32."""

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def grad_scaling(self) -> bool:
        """fp16 needs gradient scaling; bf16 and float32 do not."""
        return self.amp_dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision context of forward passes (a no-op in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over ranks (``tensor`` itself in a world of one)."""
        if self.distributed:
            tensor = tensor.clone()
            dist.all_reduce(tensor)
            tensor /= self.world_size
        return tensor

    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Average the gradients of ``parameters`` over ranks (for steps outside DDP)."""
        if self.distributed:
            for parameter in parameters:
                if parameter.grad is not None:
                    dist.all_reduce(parameter.grad)
                    parameter.grad /= self.world_size

    def average_buffers(self, module: nn.Module) -> None:
        """Average the floating-point buffers (BatchNorm running statistics) over ranks, so
        that every rank holds the same model and its statistics reflect every rank's data."""
        if self.distributed:
            for buffer in module.buffers():
                if buffer.is_floating_point():
                    dist.all_reduce(buffer)
                    buffer /= self.world_size

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``."""
    if name not in ("auto", "cpu", "cuda"):
        raise SpeechEQError(f"--device must be auto, cpu or cuda, got '{name}'")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpeechEQError("--device cuda was asked for, but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


@contextlib.contextmanager
def runtime(device: str, amp: bool) -> Iterator[Runtime]:
    """Set up this process (joining the process group under ``torchrun``); tear down after."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    chosen = choose_device(device, int(os.environ.get("LOCAL_RANK", str(rank))))
    amp_dtype = None
    if amp and chosen.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    joined = False
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        joined = True
    try:
        yield Runtime(chosen, rank, world_size, amp_dtype)
    finally:
        if joined:
            dist.destroy_process_group()
