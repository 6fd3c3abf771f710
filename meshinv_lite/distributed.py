"""Several processes at once: ``torchrun``, DistributedDataParallel and sharded work.

``torchrun --nproc_per_node N`` starts ``N`` copies of a script and tells each one who it is through
environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`init_distributed` reads them and returns a :class:`DistContext`: on GPUs one process per GPU with
the ``nccl`` backend, on CPUs several processes with ``gloo``. Without ``torchrun`` it returns the
single-process context :data:`SINGLE`, whose collectives do nothing, so the same code runs either way.

Conventions used across the package:

* rank 0 (``ctx.is_main``) is the only process that writes shared files (checkpoints, merged CSVs,
  ``metrics.json``); the others wait at a :meth:`~DistContext.barrier`;
* work over a list is split round-robin with :meth:`~DistContext.shard`, so rank ``r`` of ``N`` gets items
  ``r, r + N, ...``; results are gathered with :meth:`~DistContext.all_gather_object` and merged by rank 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

#: How long a rank waits at a collective for the others (rank 0 may be building data meanwhile).
DEFAULT_TIMEOUT = timedelta(minutes=120)


@dataclass(frozen=True)
class DistContext:
    """Who this process is among ``world_size`` processes, and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: Optional[str] = None

    @property
    def enabled(self) -> bool:
        """True when there is more than one process (collectives actually communicate)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.enabled:
            dist.barrier()

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``, round-robin: ``items[rank::world_size]``."""
        return list(items[self.rank::self.world_size])

    def all_gather_object(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (any picklable object)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def mean_of(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over ranks of each value (every rank must pass the same keys)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= self.world_size
        return dict(zip(keys, t.tolist()))

    def broadcast_buffers(self, module: torch.nn.Module, src: int = 0) -> None:
        """Overwrite ``module``'s buffers (batch-norm statistics, ...) with rank ``src``'s."""
        if not self.enabled:
            return
        for b in module.buffers():
            dist.broadcast(b.data, src=src)

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")


#: The context of a plain, single-process run.
SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (or anything that sets ``WORLD_SIZE`` and ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init_distributed(device: str | torch.device = "cpu", backend: Optional[str] = None,
                     timeout: timedelta = DEFAULT_TIMEOUT) -> DistContext:
    """Join the process group ``torchrun`` set up, or return a single-process context.

    Args:
        device: ``"cpu"`` or ``"cuda"``; with ``"cuda"`` each process takes GPU ``LOCAL_RANK``.
        backend: ``"gloo"`` (CPU) or ``"nccl"`` (GPU); default: ``nccl`` for CUDA, else ``gloo``.
        timeout: how long collectives wait for slow ranks.
    Returns:
        a :class:`DistContext`; call :func:`shutdown` with it when done.
    """
    device = torch.device(device)
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        if device.type == "cuda" and device.index is None and torch.cuda.is_available():
            device = torch.device("cuda", torch.cuda.current_device())
        return DistContext(device=device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' was asked for but this torch build sees no GPU; use --device cpu "
                               "(several CPU processes then talk over gloo)")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s): start at most "
                               "one process per GPU (torchrun --nproc_per_node <number of GPUs>)")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timeout,
                                **({"device_id": device} if backend == "nccl" else {}))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device, backend=backend)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_ddp(module: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``module`` wrapped in DistributedDataParallel when ``ctx`` has several ranks, else ``module`` itself.

    Gradients are averaged over ranks during ``backward``; buffers are broadcast from rank 0 at each forward.
    """
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DDP(module, device_ids=ids, output_device=ids[0] if ids else None)
