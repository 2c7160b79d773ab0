"""The operator's API client keeps a connection for every thread that may call at once.

The kubernetes client's pool keeps 5 connections per core (10 on 2 cores), fewer than
the operator's reconcile threads and Event senders together: each connection beyond it
was closed after its call and opened again for the next, a TLS handshake on both sides
(166 times while 300 ModelDeployments came up with 32 reconciles at once).
"""

from __future__ import annotations

import os
import threading

import pytest
from kubernetes import client as k8s
from pitstop.devcluster import testing
from pitstop.k8s import client

pytestmark = pytest.mark.integration

# More than the kubernetes client's default pool on this machine (5 per core): 16 on 2.
CALLERS = (os.cpu_count() or 1) * 5 + 6


def opened(kube: client.KubeClient) -> int:
    """TCP connections the client has opened so far (urllib3 counts them per pool)."""
    pools = kube.api.rest_client.pool_manager.pools
    # urllib3's RecentlyUsedContainer refuses plain iteration; its keys() is a copy.
    return sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118


def together(kube: client.KubeClient, namespace: str) -> None:
    """CALLERS calls in flight at once: watches held open for a second each."""
    core = k8s.CoreV1Api(kube.api)
    ready = threading.Barrier(CALLERS)
    failures: list[BaseException] = []

    def call() -> None:
        try:
            ready.wait(timeout=30)
            response = core.list_namespaced_config_map(
                namespace, watch=True, timeout_seconds=1, _preload_content=False
            )
            response.read()
            response.release_conn()
        except BaseException as error:  # the test fails on it below
            failures.append(error)

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures


def test_connections_are_kept_for_every_caller(cluster: testing.DevCluster, namespace: str) -> None:
    kube = client.connect(str(cluster.kubeconfig), callers=CALLERS)
    try:
        together(kube, namespace)
        first = opened(kube)
        together(kube, namespace)
        assert first == CALLERS
        assert opened(kube) == first, (
            f"{CALLERS} callers at once opened {opened(kube) - first} connections more "
            "the second time: the pool closed what it could not keep"
        )
    finally:
        kube.api.close()  # type: ignore[no-untyped-call]
