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

pytestmark = pytest.mark.integration

BATCH = 20


def sent(cluster: testing.DevCluster) -> float:
    """Watch events the API server has sent for ConfigMaps, to every watcher."""
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    return operator_metrics.total(operator_metrics.parse(text), "apiserver_watch_events_total",
                                  resource="configmaps")  # fmt: skip


def settled(cluster: testing.DevCluster, since: float) -> float:
    """Events sent since `since` once every watcher has had a batch: at least one per
    ConfigMap (the controller-manager watches them all), then unchanged for a second."""
    last, still = -1.0, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = sent(cluster) - since
        still = still + 1 if now == last and now >= BATCH else 0
        if still >= 4:
            return now
        last = now
        time.sleep(0.25)  # a poll interval: the loop ends on the count, not the time
    raise AssertionError(f"watch events for the batch never settled (last {last})")


def batch(cluster: testing.DevCluster, namespace: str, prefix: str, label: dict[str, str]) -> float:
    """Create BATCH ConfigMaps with `label` and return the watch events they caused."""
    before = sent(cluster)
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"{prefix}-{i}", "labels": label}, "data": {"k": "v"}}
             for i in range(BATCH)]  # fmt: skip
    cluster.kubectl("create", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))  # fmt: skip
    return settled(cluster, before)


def test_only_pitstops_own_config_maps_reach_the_operators_watch(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    others = batch(cluster, namespace, "tenant", {"app": "someone-else"})
    # Labelled as a ModelDeployment's child (of one that does not exist: the reconcile
    # it kicks finds nothing to do).
    pitstops = batch(cluster, namespace, "child", labels.base("nobody"))
    assert pitstops - others == BATCH, (
        f"{BATCH} ConfigMaps of someone else caused {others:.0f} watch events and "
        f"{BATCH} like Pitstop's {pitstops:.0f}: the operator's watch should add exactly "
        f"one per Pitstop ConfigMap and none for the others"
    )
