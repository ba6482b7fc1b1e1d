"""Seed sweeps under torchrun: sharding and gathering with the gloo backend on two processes."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")

from identifiable.torch import distributed as dist  # noqa: E402

pytestmark = pytest.mark.torch


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d = dist.init("cpu")
    assert (d.rank, d.world, d.active, d.is_main) == (0, 1, False, True)
    jobs = list(range(7))
    assert dist.shard(d, jobs) == jobs
    assert dist.gather(d, ["a", "b"]) == ["a", "b"]
    assert dist.device_for(d, "cuda") == "cuda"
    dist.barrier(d)
    dist.finish(d)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, queue) -> None:
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    d = dist.init("cpu")
    jobs = [("cnn", s) for s in range(5)]
    mine = dist.shard(d, jobs)
    results = dist.gather(d, [f"{r}-s{s}@{d.rank}" for r, s in mine])
    queue.put((d.rank, d.world, mine, results, torch.get_num_threads()))
    dist.finish(d)


def test_two_gloo_processes_split_the_jobs_and_gather_in_job_order():
    ctx = torch.multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    out = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (r0, w0, mine0, res0, t0), (r1, w1, mine1, res1, _) = out
    assert (r0, r1, w0, w1) == (0, 1, 2, 2)
    assert mine0 == [("cnn", 0), ("cnn", 2), ("cnn", 4)] and mine1 == [("cnn", 1), ("cnn", 3)]
    expected = [f"cnn-s{s}@{s % 2}" for s in range(5)]
    assert res0 == res1 == expected
    assert t0 == max(1, (os.cpu_count() or 1) // 2)
