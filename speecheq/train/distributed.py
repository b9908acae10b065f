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

from speecheq.device import autocast, choose_device, mixed_precision_dtype


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
        return autocast(self.device, self.amp_dtype)

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


@contextlib.contextmanager
def runtime(device: str, amp: bool) -> Iterator[Runtime]:
    """Set up this process (joining the process group under ``torchrun``); tear down after."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    chosen = choose_device(device, int(os.environ.get("LOCAL_RANK", str(rank))))
    joined = False
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        joined = True
    try:
        yield Runtime(chosen, rank, world_size, mixed_precision_dtype(chosen, amp))
    finally:
        if joined:
            dist.destroy_process_group()
