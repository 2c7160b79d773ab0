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
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s_client
from pitstop.devcluster import testing

Object = dict[str, Any]


def read(method: Callable[..., Any], *args: str) -> Object:
    """The JSON an API read returns, as plain dicts (the client's models are not)."""
    response = method(*args, _preload_content=False, _request_timeout=10)
    body: Object = json.loads(response.data)
    return body


@dataclasses.dataclass(frozen=True)
class Snapshot:
    pods: list[Object]
    services: dict[str, Object]  # by name


class Listing:
    """The namespace's pods and Services, read at most once per `max_age` a caller
    asks for; thread-safe, and a context manager (it holds an API client)."""

    def __init__(self, cluster: testing.DevCluster, namespace: str) -> None:
        self.namespace = namespace
        self.api = cluster.api_client()
        self._lock = threading.Lock()
        self._snapshot = Snapshot([], {})
        self._read_at: float | None = None  # monotonic time the last read began

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def read(self, max_age: float) -> Snapshot:
        """Pods and Services as the API served them no more than `max_age` seconds
        before this call (counted from when that read began)."""
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at > max_age:
                core = k8s_client.CoreV1Api(self.api)
                pods = read(core.list_namespaced_pod, self.namespace)["items"]
                listed = read(core.list_namespaced_service, self.namespace)["items"]
                self._snapshot = Snapshot(pods, {s["metadata"]["name"]: s for s in listed})
                self._read_at = now
            return self._snapshot
