"""Leader election on a coordination.k8s.io/v1 Lease: one replica acts, the others stand by.

Why a Lease, and why this code rather than a library's:
- Kopf's peering (KopfPeering custom resources) exists to pause deployed operators
  while a developer's runs; its own docstring says there are "NO per-object locks
  between the operators", and two peers of the same priority — two replicas of one
  Deployment — both keep working, with a warning. It needs its own CRDs, too.
- A Lease is what kube-controller-manager, kube-scheduler and controller-runtime use:
  `kubectl get lease -n <operator namespace>` shows who leads, and the chart's RBAC
  already has its Role.
- The kubernetes client's `kubernetes.leaderelection` speaks the same protocol, but it
  calls the API through the global default client (outside the facade: no declared
  permissions, no timeouts), blocks a thread in loops it cannot be asked to leave,
  never releases the Lease (a rolling update would wait a whole lease duration),
  `sys.exit`s on a bad setting, judges expiry by the wall clock, and tells its leader
  about a loss only after the renew deadline — it has nothing to stop a write already
  under way. So this is client-go's algorithm (tools/leaderelection), on the facade.

The protocol, as client-go's:
- A candidate takes the Lease when it has no holder, or when its record has not
  changed for leaseDurationSeconds as *this replica observed it* (its own monotonic
  clock: the nodes' clocks never need to agree). It writes itself as holder with the
  resourceVersion it read, so of two candidates one gets 409.
- The leader renews every retry period and stops leading when no renewal succeeded
  within the renew deadline (shorter than the lease duration).
- On shutdown the leader stops writing, then empties the holder: a standby takes
  over at its next try instead of a whole lease duration later.

Fencing. A replica may write only while `now < valid_until`, where `valid_until` is
the monotonic time at which its last successful renewal was *sent*, plus the renew
deadline. Another replica can take the Lease no earlier than a lease duration after
it observed that renewal, which it can only have seen after it was sent: writes stop
at least (lease duration - renew deadline) before anyone else may lead. The facade
asks the `fence` right before each write leaves the process, and a write's timeout is
held to that margin, so a write that passed the fence has returned or been abandoned
by the time another replica can lead. A process frozen mid-reconcile (SIGSTOP, a
long pause, a VM migration) finds the fence closed when it wakes, before its
election loop has noticed anything. (The API server cannot check a fencing token, so
a write delayed in the network beyond its timeout is the one case this cannot rule
out; the status write's resourceVersion precondition still refuses it if the new
leader wrote the object meanwhile.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pitstop.k8s import errors
from pitstop.k8s.client import KubeClient

log = logging.getLogger(__name__)

JITTER = 1.2  # a candidate retries after retry_period x [1, JITTER); client-go's factor


@dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease is, who this replica is, and the timing (seconds)."""

    name: str
    namespace: str
    identity: str
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("the leader election needs an identity (the pod's name)")
        if self.duration != math.floor(self.duration) or self.duration < 1:
            raise ValueError("the lease duration is whole seconds (leaseDurationSeconds)")
        if not self.duration > self.renew_deadline > self.retry_period * JITTER > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > "
                f"{JITTER} x retry period > 0"
            )

    @property
    def write_margin(self) -> float:
        """How long a write may take: it must be over before another replica can lead."""
        return self.duration - self.renew_deadline


class Elector:
    """Takes, renews and releases the Lease; `gate` is set while this replica leads and
    `fence` refuses writes when it may not write."""

    def __init__(
        self,
        kube: KubeClient,
        settings: LeaseSettings,
        *,
        on_started: Callable[[], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.settings = kube, settings
        self.gate = asyncio.Event()
        self._on_started, self._on_stopped = on_started, on_stopped
        self._clock = clock
        self._leading = False
        self._valid_until = -math.inf
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._holder: str | None = None  # as last read
        self._announced: str | None = None
        self._since = clock()
        self._resigned = False

    @property
    def where(self) -> str:
        return f"{self.settings.namespace}/{self.settings.name}"

    def leading(self) -> bool:
        return self._leading and self._clock() < self._valid_until

    def fence(self) -> None:
        """Raise `errors.NotLeader` unless this replica may write now (any thread)."""
        if not self.leading():
            raise errors.NotLeader(f"{self.settings.identity} does not hold lease {self.where}")

    async def run(self) -> None:
        """Try to lead, then keep leading, until cancelled."""
        while True:
            self._expire()
            sent = self._clock()
            try:
                took = await asyncio.to_thread(self._try, sent)
            except Exception as error:  # the API away: the deadline decides
                log.warning("lease %s: %s", self.where, errors.describe(error))
                took = False
            if took:
                self._valid_until = sent + self.settings.renew_deadline
                if not self._leading:
                    self._start()
            elif self._leading and self._holder not in (None, self.settings.identity):
                self._stop(f"{self._holder} holds it now")
            self._expire()
            pause = self.settings.retry_period
            if not self._leading:
                pause *= random.uniform(1.0, JITTER)
            await asyncio.sleep(pause)

    def resign(self) -> None:
        """Stop writing at once (shutting down); `release` gives the Lease up after."""
        self._resigned = self._leading
        if self._leading:
            self._stop("shutting down", logging.INFO)

    async def release(self) -> None:
        """Give the Lease up, if this replica held it when it resigned, so that a standby
        leads at its next try instead of a lease duration later."""
        if self._resigned:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._give_up)

    def _expire(self) -> None:
        if self._leading and self._clock() >= self._valid_until:
            self._stop(f"no renewal within the renew deadline ({self.settings.renew_deadline:g}s)")

    def _start(self) -> None:
        self._leading = True
        self.gate.set()
        log.info("leading: took lease %s as %s after %.1fs",
                 self.where, self.settings.identity, self._clock() - self._since)  # fmt: skip
        if self._on_started is not None:
            self._on_started()

    def _stop(self, why: str, level: int = logging.WARNING) -> None:
        self._leading = False
        self._valid_until = -math.inf
        self.gate.clear()
        self._since = self._clock()
        log.log(level, "lost lease %s: %s; no more writes from %s",
                self.where, why, self.settings.identity)  # fmt: skip
        if self._on_stopped is not None:
            self._on_stopped()

    def _try(self, now: float) -> bool:
        """One attempt to take or renew the Lease (in a thread)."""
        ns, name, me = self.settings.namespace, self.settings.name, self.settings.identity
        lease = self.kube.get_lease(ns, name)
        if lease is None:
            self._holder = me
            return self.kube.create_lease(ns, name, self._spec(None))
        spec: dict[str, Any] = lease.get("spec") or {}
        record = tuple(spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime",
                                            "leaseDurationSeconds", "leaseTransitions"))  # fmt: skip
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        holder = spec.get("holderIdentity") or ""
        self._holder = holder or None
        if holder and holder != self._announced and holder != me:
            log.info("standing by: lease %s is held by %s", self.where, holder)
            self._announced = holder
        duration = float(spec.get("leaseDurationSeconds") or self.settings.duration)
        if holder and holder != me and self._clock() < self._observed_at + duration:
            return False
        updated = self._spec(spec)
        if not self.kube.update_lease(ns, name, updated, lease["metadata"]["resourceVersion"]):
            return False
        self._holder = me
        self._announced = me
        return True

    def _spec(self, current: dict[str, Any] | None) -> dict[str, Any]:
        stamp = _micro_time(datetime.now(UTC))
        me = self.settings.identity
        mine = current is not None and current.get("holderIdentity") == me
        transitions = int((current or {}).get("leaseTransitions") or 0)
        return {
            "holderIdentity": me,
            "leaseDurationSeconds": int(self.settings.duration),
            "acquireTime": (current or {}).get("acquireTime") if mine else stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions if mine or current is None else transitions + 1,
        }

    def _give_up(self) -> None:
        lease = self.kube.get_lease(self.settings.namespace, self.settings.name)
        spec: dict[str, Any] = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != self.settings.identity:
            return
        stamp = _micro_time(datetime.now(UTC))
        released = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1,
                    "acquireTime": stamp, "renewTime": stamp}  # fmt: skip
        if self.kube.update_lease(self.settings.namespace, self.settings.name, released,
                                  lease["metadata"]["resourceVersion"]):  # fmt: skip
            log.info("released lease %s", self.where)


def _micro_time(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with exactly six fractional digits, in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
