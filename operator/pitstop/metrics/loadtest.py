"""Load and stress tests of a candidate before any user reaches it (`analysis.loadTest`,
`analysis.stressTest`): requests drawn from the training profile, sent at a target rate.

The load is open-loop: requests leave on a fixed schedule, at most `concurrency` in
flight. Each one's latency counts from when it was sent (not from when it was due: the
sender shares its process and CPU with the operator, and its own lag is not the
model's); a server that falls behind shows it twice — its answers queue on its
connections (their latency grows) and fewer are answered than were due (`rate`). Every request carries `X-Pitstop-Generated: 1` (counted by the model
servers, kept out of drift). A test runs in a thread of its own (`Runner`): a reconcile
only starts it and later reads its result, never waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from pitstop.analysis import smoke
from pitstop.metrics import load
from pitstop.metrics.load import GENERATED

log = logging.getLogger(__name__)
T = TypeVar("T")
STRESS_CONCURRENCY = 256


@dataclass(frozen=True)
class Measured:
    """What one steady load saw."""

    sent: int
    errors: int
    p99: float | None
    rate: float
    """Answers per second achieved (under the target when the server fell behind)."""
    offered: float
    """Requests per second actually sent: under the target when the sender itself lagged
    (its process and CPU are shared), which is not the server's doing."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 0.0


def rows_from(url: str, headers: Mapping[str, str], count: int = 256) -> list[dict[str, Any]]:
    """Rows drawn from the training profile the model server describes."""
    with httpx.Client(timeout=10) as http:
        description = load.describe(http, url, headers)
    if description is None:
        raise RuntimeError(f"no training profile from {url}/signature")
    rng = random.Random(0)
    return [smoke.sample(description, rng) for _ in range(count)]


async def _drive(
    urls: Sequence[str], rows: Sequence[dict[str, Any]], rate: float, concurrency: int,
    seconds: float, headers: Mapping[str, str],
) -> Measured:  # fmt: skip
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(concurrency)
    targets, bodies = itertools.cycle(urls), itertools.cycle(rows)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits,
                                 headers={**headers, **GENERATED}) as client:  # fmt: skip

        async def one(url: str, row: dict[str, Any]) -> None:
            nonlocal errors
            async with slots:
                sent = time.monotonic()
                try:
                    answer = await client.post(f"{url}/predict", json=row)
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.monotonic() - sent)
            errors += 0 if ok else 1

        start = time.monotonic()
        count = max(1, round(rate * seconds))
        tasks = []
        for i in range(count):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(next(targets), next(bodies))))
        sending = time.monotonic() - start + 1 / rate  # `seconds` when on schedule
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    latencies.sort()
    p99 = (
        latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
        if latencies
        else None
    )
    answered = len(latencies) / elapsed if elapsed > 0 else 0.0
    return Measured(len(latencies), errors, p99, answered, count / sending)


def run(
    urls: Sequence[str], rows: Sequence[dict[str, Any]], rate: float, concurrency: int,
    seconds: float, headers: Mapping[str, str] | None = None,
) -> Measured:  # fmt: skip
    """`rate` requests a second for `seconds`, spread over `urls`."""
    return asyncio.run(_drive(urls, rows, rate, concurrency, seconds, headers or {}))


@dataclass(frozen=True)
class Ramp:
    capacity: float | None
    """The highest rate sustained within the limits (None: not even the first)."""
    p99: float | None
    message: str


def ramp(
    url: str, rows: Sequence[dict[str, Any]], *, start: float, factor: float, step: float,
    max_rate: float, max_p99: float, max_error_rate: float,
    headers: Mapping[str, str] | None = None,
) -> Ramp:  # fmt: skip
    """Raise the rate on one pod by `factor` each `step` seconds until the p99 or the
    error rate breaks its limit or the pod falls behind (answers < 90 % of the rate the
    sender managed: a sender late on a busy machine must not pass for a slow pod)."""
    best: tuple[float, float | None] | None = None
    rate = start
    while rate <= max_rate:
        seen = run([url], rows, rate, STRESS_CONCURRENCY, step, headers)
        why = breaks(seen, rate, max_p99, max_error_rate)
        if why is not None:
            if best is None:
                return Ramp(None, None, f"no rate sustained: {why}")
            return Ramp(best[0], best[1], f"sustains {best[0]:.4g}/s per pod; then {why}")
        best = (rate, seen.p99)
        rate *= factor
    assert best is not None
    return Ramp(best[0], best[1], f"sustains at least {best[0]:.4g}/s per pod (the ramp's max)")


def breaks(seen: Measured, rate: float, max_p99: float, max_error_rate: float) -> str | None:
    """Why one step of a ramp at `rate` failed, or None if the pod sustained it."""
    if seen.error_rate > max_error_rate:
        return f"{seen.error_rate:.1%} errors at {rate:.4g}/s"
    if seen.p99 is None or seen.p99 > max_p99:
        return f"p99 {seen.p99 or 0:.3f}s above {max_p99:g}s at {rate:.4g}/s"
    sent = min(rate, seen.offered)
    if seen.rate < 0.9 * sent:
        return f"only {seen.rate:.4g}/s answered of {sent:.4g}/s sent"
    return None


class Runner:
    """Tests running in the background, by key; a reconcile starts one and polls it."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="pitstop-loadtest")
        self._running: dict[tuple[str, ...], Future[Any]] = {}
        self._lock = threading.Lock()

    def poll(self, key: tuple[str, ...], start: Callable[[], T]) -> T | None:
        """The result of the test `key` (kept until `forget`), started with `start` if it
        is not running; None while it runs. A test that raised is logged and started
        again at the next poll (a pod that went away is no verdict on the model)."""
        with self._lock:
            future = self._running.get(key)
            if future is None:
                self._running[key] = self._pool.submit(start)
                return None
            if not future.done():
                return None
            error = future.exception()
            if error is not None:
                del self._running[key]
                log.warning("%s: the test stopped: %s", "/".join(key), error)
                return None
        return future.result()  # type: ignore[no-any-return]

    def forget(self, namespace: str, name: str) -> None:
        """Drop the results of a ModelDeployment's tests (its candidate is gone)."""
        with self._lock:
            for key in [k for k in self._running if k[:2] == (namespace, name)]:
                if self._running[key].done():
                    del self._running[key]

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
