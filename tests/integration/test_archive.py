"""The archive on the real control plane: a record of every revision that stopped
serving, kept after its Deployment and its ModelDeployment are gone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from test_rollouts_service import CANARY, INSTANT, World

pytestmark = pytest.mark.integration


def archived(world: World) -> list[dict[str, Any]]:
    try:
        found = world.get("configmap", "fraud-archive")
    except LookupError:
        return []
    records: list[dict[str, Any]] = json.loads(found["data"]["records.json"])
    return records


def outcomes(world: World) -> list[tuple[str, str]]:
    return [(r["version"], r["outcome"]) for r in archived(world)]


def test_a_retired_revision_is_archived_and_outlives_its_deployment_and_its_owner(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    world = World(cluster, namespace)
    world.apply("1", INSTANT, revisionHistoryLimit=0)
    v1 = world.healthy("1")["stable"]["revision"]
    assert archived(world) == []  # nothing ended: no write at creation
    world.apply("2", INSTANT, revisionHistoryLimit=0)
    world.healthy("2")
    cluster.wait("v1's Deployment deleted", lambda: set(world.replicas()) == {"2"})
    (record,) = archived(world)
    assert (record["revision"], record["version"], record["outcome"]) == (v1, "1", "Retired")
    assert record["image"] == "registry.example.com/ml/fraud:1"
    assert record["model"] == "fraud"
    assert record["startedAt"]
    assert record["endedAt"]
    archive = world.get("configmap", "fraud-archive")
    assert "ownerReferences" not in archive["metadata"]  # it outlives the ModelDeployment

    world.apply("3", CANARY, revisionHistoryLimit=0)
    world.until("paused at step 2", lambda s: s.get("phase") == "Paused")
    world.pitstop("abort")
    world.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    cluster.wait("v3 archived", lambda: outcomes(world) == [("1", "Retired"), ("3", "Aborted")])
    aborted = archived(world)[1]
    assert aborted["reason"].startswith("aborted by request")

    world.cluster.kubectl("delete", "md", "fraud", "-n", namespace)
    cluster.wait(
        "the serving v2 archived when its ModelDeployment went",
        lambda: outcomes(world) == [("1", "Retired"), ("3", "Aborted"), ("2", "Retired")],
    )
    assert "deleted" in archived(world)[2]["reason"]
    shown = json.loads(world.pitstop("history", "--json").stdout)
    assert [(r["version"], r["outcome"]) for r in shown] == outcomes(world)
