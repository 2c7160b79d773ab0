"""One read of a namespace's pods and Services, shared by the harness parts that follow it.

The kubelet emulator, every gateway and Prometheus's service discovery each follow the
namespace's pods (and the first two its Services) by listing them on a short period
(0.1-0.2 s: a period, not a synchronisation). Each listing on its own, the A/A test's
five gateways and one kubelet made over a hundred LISTs a second, each encoded by the
API server and decoded here: CPU the operator and the model servers under test then
lacked, on a two-core machine. Shared, whoever asks after the last read is `max_age`
old reads again, for everyone; the others get that read. No part sees older data than
its own period allowed before.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from pitstop.devcluster import testing

Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    pods: list[Object]
    services: dict[str, Object]  # by name


class Listing:
    """The namespace's pods and Services, read (through the cluster handle's kept
    client) at most once per `max_age` a caller asks for; thread-safe."""

    def __init__(self, cluster: testing.DevCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self._lock = threading.Lock()
        self._snapshot = Snapshot([], {})
        self._read_at: float | None = None  # monotonic time the last read began

    def read(self, max_age: float) -> Snapshot:
        """Pods and Services as the API served them no more than `max_age` seconds
        before this call (counted from when that read began)."""
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at > max_age:
                pods = self._items("pods")
                services = {s["metadata"]["name"]: s for s in self._items("services")}
                self._snapshot = Snapshot(pods, services)
                self._read_at = now
            return self._snapshot

    def _items(self, kind: str) -> list[Object]:
        listed = self.cluster.get(kind, namespace=self.namespace)
        assert listed is not None, f"{kind} of {self.namespace} not served"
        items: list[Object] = listed["items"]
        return items
