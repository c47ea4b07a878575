"""torch.distributed set-up for ``torchrun``: detected from the environment, no user changes.

``torchrun --nproc_per_node N perfstudent train ...`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; when
``WORLD_SIZE > 1`` we join the process group (``nccl`` on CUDA, ``gloo`` on
CPU), wrap the model in DistributedDataParallel, shard the data with
DistributedSampler semantics and all-reduce the epoch metrics. Only rank 0
writes the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from perfstudent.errors import InputError

DEVICE_TYPES = ("auto", "cpu", "cuda")


@dataclass
class DistContext:
    """Where this process runs: its rank among ``world_size`` and its torch device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.initialized:
            dist.barrier()

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a float64 tensor over all ranks (identity on one process)."""
        if not self.initialized:
            return values
        buf = values.to(self.device)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.cpu()

    def close(self) -> None:
        if self.initialized:
            dist.destroy_process_group()
            self.initialized = False


def resolve_device(device_type: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an :class:`InputError`."""
    if device_type not in DEVICE_TYPES:
        raise InputError(f"unknown device type {device_type!r}; use one of {', '.join(DEVICE_TYPES)}")
    use_cuda = device_type == "cuda" or (device_type == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise InputError("--device-type cuda: no CUDA device is available")
    return torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")


def init_distributed(device_type: str = "auto") -> DistContext:
    """Join the process group if launched by torchrun with ``WORLD_SIZE > 1``; else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_type, local_rank)
    if world_size <= 1:
        return DistContext(0, 1, 0, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, device, initialized=True)
