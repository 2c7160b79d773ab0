"""The per-object work queue: serial per key, kicks coalesce, requeues fire."""

from __future__ import annotations

import asyncio
import threading

from pitstop.workqueue import WorkQueue


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
