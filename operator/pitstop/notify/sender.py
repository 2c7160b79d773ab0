"""Deliver notifications without ever holding up a reconcile.

A reconcile hands its transitions to `Notifier.send`, which only queues them; one
thread POSTs each to its targets. A delivery that fails (no answer, 429, 5xx) is tried
again later with exponential backoff, up to `attempts` times, while other deliveries go
on — a dead endpoint delays nothing but its own messages. The queue is bounded: when
it is full, the new message is dropped and counted. Other 4xx answers are not retried
(the request itself is wrong). Delivery is at most once per committed transition: an
operator that stops with messages queued loses them (each is in the status history
and the Events too).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from pitstop import telemetry
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import NOTIFY_ON
from pitstop.k8s.client import KubeClient
from pitstop.notify import payload
from pitstop.notify.transitions import Transition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    url: str
    format: str = "JSON"
    events: frozenset[str] = frozenset(NOTIFY_ON)


def targets(
    kube: KubeClient, md: ModelDeployment, default: Target | None
) -> tuple[list[Target], list[str]]:
    """The operator's target and the ModelDeployment's, and what could not be resolved
    (a Secret or key that is missing), for a Warning Event."""
    found = [default] if default is not None else []
    problems: list[str] = []
    for i, wanted in enumerate(md.spec.notify):
        url = wanted.url
        if wanted.url_secret is not None:
            ref = wanted.url_secret
            url = (kube.read_secret(md.metadata.namespace, ref.name) or {}).get(ref.key, "").strip()
            if not url:
                problems.append(f"spec.notify[{i}].urlSecret: Secret {ref.name} has no key "
                                f"{ref.key!r}; that notification was not sent")  # fmt: skip
                continue
        if url:
            found.append(Target(url, wanted.format, frozenset(wanted.events)))
    return found, problems


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    target: Target = field(compare=False)
    body: dict[str, Any] = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Notifier:
    def __init__(
        self,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        capacity: int = 1000,
        timeout: float = 5.0,
    ) -> None:
        self.attempts, self.backoff, self.capacity = attempts, backoff, capacity
        self._http = httpx.Client(timeout=timeout)
        self._queue: list[_Delivery] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)
        self._thread.start()

    def send(self, to: Iterable[Target], transitions: Sequence[Transition]) -> None:
        """Queue each transition for each target that wants it; never blocks."""
        with self._wake:
            for target in to:
                for t in transitions:
                    if t.kind not in target.events:
                        continue
                    if len(self._queue) >= self.capacity:
                        telemetry.notification("dropped")
                        log.warning("notification queue full; dropped %s of %s/%s to %s",
                                    t.kind, t.namespace, t.name, _host(target.url))  # fmt: skip
                        continue
                    body = payload.body(t, target.format)
                    heapq.heappush(self._queue, _Delivery(time.monotonic(), next(self._order),
                                                          target, body))  # fmt: skip
            self._wake.notify()

    def post(self, url: str, body: dict[str, Any]) -> None:
        """Queue one JSON body for `url` (a retraining webhook), delivered like the
        notifications: retried with backoff, never blocking."""
        with self._wake:
            if len(self._queue) >= self.capacity:
                telemetry.notification("dropped")
                log.warning("notification queue full; dropped a POST to %s", _host(url))
                return
            heapq.heappush(self._queue, _Delivery(time.monotonic(), next(self._order),
                                                  Target(url), body))  # fmt: skip
            self._wake.notify()

    def stop(self, grace: float = 5.0) -> None:
        """Deliver what is due within `grace` seconds, then stop."""
        deadline = time.monotonic() + grace
        with self._wake:
            while self._queue and self._queue[0].due <= time.monotonic() < deadline:
                self._wake.wait(0.05)
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._http.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (
                    not self._queue or self._queue[0].due > time.monotonic()
                ):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._wake.wait(wait)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._queue)
            outcome = self._post(delivery)
            if outcome == "retry" and delivery.attempt < self.attempts:
                delivery.due = time.monotonic() + self.backoff * 2 ** (delivery.attempt - 1)
                delivery.attempt += 1
                with self._wake:
                    heapq.heappush(self._queue, delivery)
                continue
            telemetry.notification("sent" if outcome == "sent" else "failed")
            if outcome != "sent":
                log.warning("notification to %s failed after %d attempt(s)",
                            _host(delivery.target.url), delivery.attempt)  # fmt: skip
            with self._wake:
                self._wake.notify_all()  # stop() may be waiting for the queue to drain

    def _post(self, delivery: _Delivery) -> str:
        try:
            answer = self._http.post(delivery.target.url, json=delivery.body)
        except httpx.HTTPError as error:
            log.info("notification to %s: %s", _host(delivery.target.url), type(error).__name__)
            return "retry"
        if answer.status_code < 300:
            return "sent"
        if answer.status_code == 429 or answer.status_code >= 500:
            return "retry"
        return "refused"


def _host(url: str) -> str:
    """A URL for logs without its path (a Slack URL's path is its secret)."""
    return httpx.URL(url).host or "?"
