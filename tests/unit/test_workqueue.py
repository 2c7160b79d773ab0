"""The per-object work queue: serial per key, kicks coalesce, requeues fire, failures
back off, concurrency is bounded, and a standby runs nothing until it leads."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from pitstop.workqueue import Standby, WorkQueue


async def until(predicate: object, deadline: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():  # type: ignore[operator]
        assert loop.time() < end, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def test_kicks_during_a_run_coalesce_into_one_more_run() -> None:
    release = threading.Event()
    runs: list[tuple[str, str]] = []
    active = 0
    overlap = False

    def work(namespace: str, name: str) -> float | None:
        nonlocal active, overlap
        active += 1
        overlap |= active > 1
        runs.append((namespace, name))
        release.wait(5)
        active -= 1
        return None

    async def scenario() -> None:
        queue = WorkQueue(work)
        queue.kick(("ns", "a"))
        await until(lambda: len(runs) == 1)
        for _ in range(10):
            queue.kick(("ns", "a"))
        release.set()
        await until(lambda: len(runs) == 2)
        await asyncio.sleep(0.1)  # give a wrong implementation the chance to run again
        await queue.stop()

    asyncio.run(scenario())
    assert runs == [("ns", "a"), ("ns", "a")]
    assert not overlap


def test_requeue_after_runs_again_and_failures_are_retried() -> None:
    calls: list[int] = []

    def work(namespace: str, name: str) -> float | None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("API unavailable")
        return 0.05 if len(calls) < 4 else None

    async def scenario() -> None:
        queue = WorkQueue(work)
        queue.kick(("ns", "b"))
        await until(lambda: len(calls) >= 4)
        await queue.stop()

    asyncio.run(scenario())
    assert len(calls) == 4


def test_no_more_than_max_concurrent_reconciles_run_at_once() -> None:
    lock = threading.Lock()
    active = peak = 0
    done: list[str] = []

    def work(namespace: str, name: str) -> float | None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
            done.append(name)
        return None

    async def scenario() -> None:
        queue = WorkQueue(work, max_concurrent=3)
        for i in range(12):
            queue.kick(("ns", f"md-{i}"))
        await until(lambda: len(done) == 12)
        await queue.stop()

    asyncio.run(scenario())
    assert peak == 3  # the bound is reached, never passed


def test_failures_back_off_exponentially_and_a_zero_delay_runs_again_at_once() -> None:
    starts: list[float] = []

    def work(namespace: str, name: str) -> float | None:
        starts.append(time.monotonic())
        if len(starts) <= 2:
            raise RuntimeError("API unavailable")
        return 0.0 if len(starts) == 3 else None  # a conflict: again, at once

    async def scenario() -> None:
        queue = WorkQueue(work)
        queue.kick(("ns", "c"))
        await until(lambda: len(starts) == 4, deadline=10)
        await queue.stop()

    asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 1.9 < gaps[0] < 3.0  # 2 s after the first failure
    assert 3.9 < gaps[1] < 5.0  # 4 s after the second
    assert gaps[2] < 0.5  # a requeue of 0 is no backoff


def test_a_standby_keeps_its_kicks_and_runs_them_when_it_leads() -> None:
    runs: list[str] = []
    gate = asyncio.Event()
    leading = False

    def work(namespace: str, name: str) -> float | None:
        if not leading:
            raise Standby  # the fence closed under a run
        runs.append(name)
        return None

    async def scenario() -> None:
        nonlocal leading
        queue = WorkQueue(work, gate=gate)
        queue.kick(("ns", "a"))
        queue.kick(("ns", "b"))
        await asyncio.sleep(0.2)
        assert runs == []  # not the leader: nothing ran
        gate.set()  # leads, but the fence still says no: a Standby, not a failure
        await asyncio.sleep(0.2)
        gate.clear()
        leading = True
        await asyncio.sleep(1.2)
        assert runs == []
        gate.set()
        await until(lambda: sorted(runs) == ["a", "b"])
        await queue.stop()

    asyncio.run(scenario())
