"""Serialise reconciles per ModelDeployment, coalesce the reasons to run them, bound how
many run at once, and run none while this replica is not the leader.

Kopf calls event handlers for the ModelDeployment and for each child Deployment in
separate per-object workers, so two reconciles of one ModelDeployment could overlap.
Here every key has exactly one loop: any number of kicks while a reconcile runs
collapse into one more run, and a reconcile that asks to look again later is
re-run after that delay unless a kick comes first. This replaces Kopf daemons and
timers, which would put a finalizer on every user object.

At most `max_concurrent` reconciles run at a time, on a thread pool of that size (a
reconcile blocks on the API and on HTTP). A failed reconcile is retried with an
exponential backoff; one that asks to run again at once (a conflict) is not a failure.
With a `gate` (the leader election's), loops wait for it before each run: a standby
keeps every kick it receives and runs them when it becomes the leader. A reconcile
that finds it may not write (`Standby`, raised by its work) waits for the gate again,
without counting a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pitstop import telemetry

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Work = Callable[[str, str], float | None]

MAX_BACKOFF_SECONDS = 60.0
MAX_CONCURRENT = 8
STANDBY_PAUSE_SECONDS = 1.0


class Standby(Exception):
    """Raised by work that may not act now (this replica is not the leader)."""


class WorkQueue:
    def __init__(
        self,
        work: Work,
        *,
        max_concurrent: int = MAX_CONCURRENT,
        gate: asyncio.Event | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._work = work
        self._gate = gate
        self._slots = asyncio.Semaphore(max_concurrent)
        self._pool = ThreadPoolExecutor(max_concurrent, thread_name_prefix="reconcile")
        self._kicks: dict[Key, asyncio.Event] = {}
        self._loops: dict[Key, asyncio.Task[None]] = {}
        self._running: set[asyncio.Future[float | None]] = set()
        self._waiting: set[Key] = set()

    def kick(self, key: Key) -> None:
        """Ask for one more reconcile of `key` as soon as possible."""
        self._kicks.setdefault(key, asyncio.Event()).set()
        loop = self._loops.get(key)
        if loop is None or loop.done():
            self._loops[key] = asyncio.create_task(self._run(key), name=f"reconcile {key}")

    def forget(self, key: Key) -> None:
        """Stop the loop of a deleted object."""
        loop = self._loops.pop(key, None)
        self._kicks.pop(key, None)
        self._waiting.discard(key)
        if loop is not None:
            loop.cancel()

    async def stop(self, grace: float = 30.0) -> None:
        """Cancel every loop, then wait (up to `grace` seconds) for the reconciles
        already running in threads, which cannot be cancelled, to return."""
        loops = list(self._loops.values())
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._running:
            await asyncio.wait(list(self._running), timeout=grace)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, key: Key) -> None:
        kick = self._kicks[key]
        failures = 0
        while True:
            await kick.wait()
            asked = time.monotonic()
            self._waiting.add(key)
            try:
                if self._gate is not None:
                    await self._gate.wait()
                kick.clear()
                delay = await self._call(key, asked)
                failures = 0
            except Standby as refused:
                # Run again once this replica leads; the pause keeps a loop from
                # spinning while the gate has yet to close.
                log.info("reconcile of %s/%s stopped before writing: %s", *key, refused)
                kick.set()
                await asyncio.sleep(STANDBY_PAUSE_SECONDS)
                continue
            except Exception:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                log.exception("reconcile of %s/%s failed; retrying in %.0fs", *key, delay)
            if delay is not None and not kick.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(kick.wait(), timeout=delay)
                kick.set()

    def waiting(self) -> int:
        """Keys whose reconcile is asked for and not started."""
        return len(self._waiting)

    async def _call(self, key: Key, asked: float) -> float | None:
        async with self._slots:
            self._waiting.discard(key)
            telemetry.QUEUE_WAIT.observe(time.monotonic() - asked)
            future = asyncio.get_running_loop().run_in_executor(self._pool, self._work, *key)
            self._running.add(future)
            try:
                return await future
            finally:
                self._running.discard(future)
