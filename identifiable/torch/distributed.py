"""Seed sweeps under ``torchrun``: each process takes its share of the jobs, rank 0 reports.

A command that calls :func:`init` runs unchanged as one process or under
``torchrun --nproc_per_node N``: with ``WORLD_SIZE > 1`` in the environment it joins the
process group (``gloo`` on CPU, ``nccl`` when the device is CUDA), :func:`shard` gives every rank
a disjoint part of a job list (round robin, in order), and :func:`gather` collects the results
of all ranks on every rank (``all_gather_object``), in job order. On one process these are
no-ops. CPU threads are split between the processes of one machine unless given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Dist", "init", "shard", "gather", "barrier", "finish", "on_main"]

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """Rank, world size and local rank of this process; ``active`` under torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    active: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str = "cpu", threads: int | None = None) -> Dist:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``)."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if threads:
        torch.set_num_threads(threads)
    elif world > 1 and not device.startswith("cuda"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local_rank, local_world, True)


def device_for(d: Dist, device: str) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` under torchrun; anything else unchanged."""
    return f"cuda:{d.local_rank}" if (device == "cuda" and d.active) else device


def shard(d: Dist, jobs: list[T]) -> list[T]:
    """This rank's jobs: ``jobs[rank::world]``."""
    return jobs[d.rank::d.world]


def gather(d: Dist, mine: list[Any]) -> list[Any]:
    """All ranks' results, in the order of the job list that :func:`shard` split."""
    if not d.active:
        return list(mine)
    import torch.distributed as dist

    parts: list[Any] = [None] * d.world
    dist.all_gather_object(parts, list(mine))
    out: list[Any] = []
    for i in range(max(len(p) for p in parts)):
        out += [p[i] for p in parts if i < len(p)]
    return out


def barrier(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()


def finish(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def on_main(d: Dist, fn, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on rank 0 only and share its result with every rank; an exception on rank 0
    is raised on every rank (as a ValueError with the same message), so that no rank goes on
    alone (e.g. when rank 0 cannot lock the run folder)."""
    if not d.active:
        return fn(*args, **kwargs)
    import torch.distributed as dist

    box: list[Any] = [None]
    if d.is_main:
        try:
            box[0] = ("ok", fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - re-raised below on every rank
            box[0] = ("error", f"{exc}")
            err = exc
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        if d.is_main:
            raise err
        raise ValueError(value)
    return value
