# SPDX-License-Identifier: BSD-3-Clause
"""Single-process or DDP execution, decided by the environment ``torchrun`` sets.

``torchrun --nproc_per_node N -m bnn_brevitas.train …`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; each one joins a process group (``nccl`` on CUDA, ``gloo``
on the CPU), trains on its ``1/N`` shard with ``batch_size / N`` samples per step, and
gradients are averaged by ``DistributedDataParallel``. Only rank 0 logs at INFO level, shows
progress bars and writes files (checkpoints, metrics, plot, ONNX, model card).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is true on any rank (keeps ranks in lock-step)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, indexed by rank, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device_kind: str) -> DistContext:
    """Join the process group when launched by torchrun, else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if device_kind == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.debug("rank %d/%d joined the %s process group", rank, world, backend)
    return DistContext(rank, world, local, backend)


def resolve_device(kind: str, ctx: DistContext) -> torch.device:
    """``auto`` → CUDA when available; under DDP on CUDA, the GPU of this local rank."""
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        return torch.device("cuda", ctx.local_rank if ctx.distributed else 0)
    return torch.device("cpu")
