"""Serialise reconciles per ModelDeployment and coalesce the reasons to run them.

Kopf calls event handlers for the ModelDeployment and for each child Deployment in
separate per-object workers, so two reconciles of one ModelDeployment could overlap.
Here every key has exactly one loop: any number of kicks while a reconcile runs
collapse into one more run, and a reconcile that asks to look again later is
re-run after that delay unless a kick comes first. This replaces Kopf daemons and
timers, which would put a finalizer on every user object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Work = Callable[[str, str], float | None]

MAX_BACKOFF_SECONDS = 60.0


class WorkQueue:
    def __init__(self, work: Work) -> None:
        self._work = work
        self._kicks: dict[Key, asyncio.Event] = {}
        self._loops: dict[Key, asyncio.Task[None]] = {}

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
        if loop is not None:
            loop.cancel()

    async def stop(self) -> None:
        loops = list(self._loops.values())
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    async def _run(self, key: Key) -> None:
        kick = self._kicks[key]
        failures = 0
        while True:
            await kick.wait()
            kick.clear()
            try:
                delay = await asyncio.to_thread(self._work, *key)
                failures = 0
            except Exception:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                log.exception("reconcile of %s/%s failed; retrying in %.0fs", *key, delay)
            if delay is not None and not kick.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(kick.wait(), timeout=delay)
                kick.set()
