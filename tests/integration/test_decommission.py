"""`pitstop decommission` on the real control plane: traffic off, every revision's pods
and Services gone, the archive kept (and the ModelDeployment deleted, or kept with
--keep-object, where no later spec brings pods back)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from test_archive import archived
from test_rollouts_service import CANARY, INSTANT, OWNED, World

pytestmark = pytest.mark.integration

REASON = "replaced by the v3 model"


@pytest.fixture
def world(cluster: testing.DevCluster, namespace: str, operator: OperatorProcess) -> World:
    return World(cluster, namespace)


def admin(world: World) -> str:
    out = world.cluster.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    return out.stdout.strip()


def owned(world: World, kind: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in world.get(kind, "-l", OWNED)["items"])


def gone(world: World) -> bool:
    try:
        world.md()
    except LookupError:
        return True
    return False


def test_decommission_drains_deletes_and_keeps_the_archive(world: World) -> None:
    world.apply("1", CANARY)
    v1 = world.healthy("1")["stable"]["revision"]
    world.apply("2", CANARY)
    paused = world.until("v2 paused at step 2", lambda s: s.get("phase") == "Paused")
    v2 = paused["candidate"]["revision"]

    out = world.pitstop("decommission", "--reason", REASON).stdout
    assert "decommission requested" in out
    assert "remove it from Git" in out  # the GitOps hint

    who = admin(world)
    said = f"decommissioned by {who}: {REASON}"
    records = {r["revision"]: r for r in archived(world)}
    assert [(records[v]["version"], records[v]["outcome"]) for v in (v1, v2)] == [
        ("1", "Retired"), ("2", "Aborted")
    ]  # fmt: skip
    for revision in (v1, v2):
        assert records[revision]["reason"] == said
        trail = [(q["action"], q["by"], q["reason"]) for q in records[revision]["requests"]]
        assert ("decommission", who, REASON) in trail

    world.cluster.wait("the ModelDeployment deleted", lambda: gone(world))
    # Garbage collection takes the entry Service (and anything else it owned); the
    # archive, owned by nobody, stays.
    world.cluster.wait(
        "no Deployment or Service of fraud left",
        lambda: owned(world, "deployments") == [] and owned(world, "services") == [],
    )
    assert archived(world)
    shown = json.loads(world.pitstop("history", "--json").stdout)
    assert {(r["revision"], r["outcome"]) for r in shown} >= {(v1, "Retired"), (v2, "Aborted")}


def generation_seen(world: World) -> Any:
    def check(status: dict[str, Any]) -> bool:
        return bool(status.get("observedGeneration") == world.md()["metadata"]["generation"])

    return check


def test_kept_object_stays_decommissioned_whatever_the_spec_says(world: World) -> None:
    world.apply("1", INSTANT)
    world.healthy("1")
    out = world.pitstop("decommission", "--keep-object").stdout
    assert "kept, decommissioned" in out
    status = world.status()
    assert status["phase"] == "Decommissioned"
    assert status["decommissioned"]["completedAt"]
    assert status["decommissioned"]["by"] == admin(world)
    assert status["traffic"]["summary"] == "none"
    assert "stable" not in status
    assert owned(world, "deployments") == []
    assert world.get("service", "fraud")["spec"]["selector"]["pitstop.dev/revision"] == "none"
    reconciling = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    assert reconciling["status"] == "False"  # kstatus: Current, Flux's health check passes

    # A new version, then one more spec change: the operator handles one pass at a time
    # per ModelDeployment, so once it has seen the second, the first's pass is over.
    world.apply("2", INSTANT)
    world.until("v2 seen", generation_seen(world))
    world.apply("2", INSTANT, revisionHistoryLimit=1)
    after = world.until("the next spec seen", generation_seen(world))
    assert after["phase"] == "Decommissioned"
    assert owned(world, "deployments") == []
    assert world.serving() == {}
    reasons = {e["reason"] for e in
               world.get("events", "--field-selector", "involvedObject.name=fraud")["items"]}  # fmt: skip
    assert "RolloutStarted" not in reasons
