"""Generated load (`analysis.load`): requests drawn from the training data profile, sent
to the candidate's and the stable's pods at a steady rate while analysis runs — a
built-in load tester for models with too little traffic for a verdict.

Each analysed ModelDeployment gets one sender thread; the reconciler says every pass
what it wants (`want`) and stops it when analysis ends (`stop`). Rows are drawn from
the training distribution the model's profile describes (`smoke.sample`), and every
request carries `X-Pitstop-Generated: 1`: the model servers count it for errors,
latency and shadow agreement, but not as drift evidence — drift is about what real
users send. What was sent is counted and taken by the reconciler (`take`) into
`status.analysis.generated`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from pitstop.analysis import smoke
from pitstop.metrics import answers

log = logging.getLogger(__name__)
GENERATED = {"X-Pitstop-Generated": "1"}  # the serving template keeps these out of drift


@dataclass
class _Job:
    rate: float
    targets: dict[str, list[str]]  # revision -> base URLs of its ready pods
    headers: dict[str, str]
    sent: int = 0
    taken: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LoadGenerator:
    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._lock = threading.Lock()

    def want(
        self,
        key: tuple[str, str],
        rate: float,
        targets: Mapping[str, list[str]],
        headers: Mapping[str, str],
    ) -> None:
        """Send `rate` requests per second to each revision in `targets` from now on."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.stopping.is_set():
                job = _Job(rate, {r: list(u) for r, u in targets.items()}, dict(headers))
                self._jobs[key] = job
                threading.Thread(
                    target=_send, args=(job,), name=f"pitstop-load {key}", daemon=True
                ).start()
                return
        with job.lock:
            job.rate = rate
            job.targets = {r: list(u) for r, u in targets.items()}
            job.headers = dict(headers)

    def take(self, key: tuple[str, str]) -> int:
        """Requests sent for `key` since the last call."""
        with self._lock:
            job = self._jobs.get(key)
        if job is None:
            return 0
        with job.lock:
            fresh, job.taken = job.sent - job.taken, job.sent
        return fresh

    def stop(self, key: tuple[str, str]) -> None:
        with self._lock:
            job = self._jobs.pop(key, None)
        if job is not None:
            job.stopping.set()

    def stop_all(self) -> None:
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            job.stopping.set()


def _send(job: _Job) -> None:
    rng = random.Random()
    description: dict[str, Any] | None = None
    next_at = time.monotonic()
    with httpx.Client(timeout=5.0) as http:
        while not job.stopping.is_set():
            with job.lock:
                rate, targets, headers = job.rate, dict(job.targets), dict(job.headers)
            urls = [urls for urls in targets.values() if urls]
            if description is None and urls:
                description = describe(http, urls[0][0], headers)
            if description is None or not urls:
                job.stopping.wait(1.0)
                continue
            for pods in urls:  # one request to each revision per tick
                row = smoke.sample(description, rng)
                try:
                    http.post(f"{rng.choice(pods)}/predict", json=row,
                              headers={**headers, **GENERATED})  # fmt: skip
                except httpx.HTTPError as error:
                    log.debug("generated request failed: %s", error)
                    continue
                with job.lock:
                    job.sent += 1
            next_at = max(next_at + 1.0 / rate, time.monotonic() - 1.0)
            job.stopping.wait(max(0.0, next_at - time.monotonic()))


def describe(http: httpx.Client, url: str, headers: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = (
            http.get(f"{url}/signature", headers=headers).raise_for_status().json()
        )
    except (httpx.HTTPError, ValueError) as error:
        log.info("no profile to generate load from yet: %s", answers.describe(error, url))
        return None
    return found
