"""The operator's watches carry only Pitstop's objects, filtered by the API server.

On a shared cluster every tenant's ConfigMaps, Services and Deployments change all day;
an operator that watched them all (filtering by label on its own side, as Kopf's handler
filters do) would make the API server encode each change for it and spend its own CPU
on each. The API server's own count of watch events sent tells: ConfigMaps like
Pitstop's children reach one more watcher (the operator) than ConfigMaps of anyone else.
"""

from __future__ import annotations

import json
import time

import operator_metrics  # tests/
import pytest
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from pitstop.rendering import labels

pytestmark = [pytest.mark.integration, pytest.mark.quiet_cluster]

BATCH = 40
# Other work moves a ConfigMap now and then (a namespace's root CA, a controller):
# a few events either way. Without the selector the two batches differ by none.
SLACK = BATCH // 4


def sent(cluster: testing.DevCluster) -> float:
    """Watch events the API server has sent for ConfigMaps, to every watcher."""
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    return operator_metrics.total(operator_metrics.parse(text), "apiserver_watch_events_total",
                                  resource="configmaps")  # fmt: skip


def settled(cluster: testing.DevCluster, at_least: float) -> float:
    """The count once every watcher has had what was done: at least `at_least`, then
    unchanged for a second."""
    last, still = -1.0, 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = sent(cluster)
        still = still + 1 if now == last and now >= at_least else 0
        if still >= 4:
            return now
        last = now
        time.sleep(0.25)  # a poll interval: the loop ends on the count, not the time
    raise AssertionError(f"watch events for ConfigMaps never settled (last {last})")


def quiet(cluster: testing.DevCluster) -> float:
    """The count once nothing else moves ConfigMaps: earlier tests' namespaces (their
    ConfigMaps deleted, each a watch event per watcher) are gone, and the count holds."""
    cluster.wait("no namespace terminating", lambda: "Terminating" not in cluster.kubectl(
        "get", "namespaces", "-o", "jsonpath={.items[*].status.phase}").stdout,
        timeout=300, interval=1.0)  # fmt: skip
    return settled(cluster, 0)


def batch(cluster: testing.DevCluster, namespace: str, prefix: str, label: dict[str, str]) -> float:
    """Create BATCH ConfigMaps with `label` and return the watch events they caused (at
    least one each: the controller-manager watches them all)."""
    before = quiet(cluster)
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"{prefix}-{i}", "labels": label}, "data": {"k": "v"}}
             for i in range(BATCH)]  # fmt: skip
    cluster.kubectl("create", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))  # fmt: skip
    return settled(cluster, before + BATCH) - before


def test_only_pitstops_own_config_maps_reach_the_operators_watch(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    others = batch(cluster, namespace, "tenant", {"app": "someone-else"})
    # Labelled as a ModelDeployment's child (of one that does not exist: the reconcile
    # it kicks finds nothing to do).
    pitstops = batch(cluster, namespace, "child", labels.base("nobody"))
    assert abs(pitstops - others - BATCH) <= SLACK, (
        f"{BATCH} ConfigMaps of someone else caused {others:.0f} watch events and "
        f"{BATCH} like Pitstop's {pitstops:.0f}: the operator's watch should add one per "
        f"Pitstop ConfigMap and none for the others"
    )
