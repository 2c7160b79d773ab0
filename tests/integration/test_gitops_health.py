"""GitOps health against every version of a ModelDeployment that real rollouts wrote
(the object as `kubectl get --watch` delivered it), on the real control plane with the
operator as installed: Argo CD's, by the Lua users install; Flux's, by the kstatus
conditions (Reconciling, Stalled) that must follow the phase."""

from __future__ import annotations

from typing import Any

import pytest
from gitops_health import argocd_health
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from test_rollouts_service import CANARY, INSTANT, World
from watching import History

pytestmark = pytest.mark.integration

EXPECTED = {
    "Pending": "Progressing",
    "Building": "Progressing",
    "Deploying": "Progressing",
    "Progressing": "Progressing",
    "Paused": "Suspended",
    "Healthy": "Healthy",
    "Degraded": "Degraded",
    "RolledBack": "Degraded",
    "Failed": "Degraded",
}


# (Reconciling, Stalled) by phase: what kstatus reads as InProgress, Failed or Current.
KSTATUS = {
    phase: ("True" if health in ("Progressing", "Suspended") else "False",
            "True" if health == "Degraded" else "False")
    for phase, health in EXPECTED.items()
}  # fmt: skip


def kstatus(status: dict[str, Any]) -> tuple[str, str]:
    found = {c["type"]: c["status"] for c in status.get("conditions", [])}
    return found.get("Reconciling", "missing"), found.get("Stalled", "missing")


def expected(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if status.get("observedGeneration", 0) < obj["metadata"]["generation"]:
        return "Progressing"
    return EXPECTED[status["phase"]]


def test_argo_cd_health_follows_real_rollouts_version_by_version(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    world = World(cluster, namespace)
    world.apply("1", INSTANT)
    world.healthy("1")
    history = History(cluster, namespace, "modeldeployments", "fraud")
    try:
        world.apply("2", CANARY)  # the second step waits for a promote
        world.until("paused at step 2", lambda s: s.get("phase") == "Paused")
        world.pitstop("promote")
        world.healthy("2")
        world.apply("3", CANARY)
        world.until("paused at step 2", lambda s: s.get("phase") == "Paused")
        world.pitstop("abort")
        world.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    finally:
        history.close()
    seen: dict[str, set[str]] = {}
    for _, obj in history.versions:
        health, message = argocd_health(obj)
        assert health == expected(obj), (obj.get("status"), message)
        seen.setdefault(health, set()).add(message.split(":")[0])
        if obj.get("status"):
            assert kstatus(obj["status"]) == KSTATUS[obj["status"]["phase"]], obj["status"]
    assert set(seen) == {"Healthy", "Progressing", "Suspended", "Degraded"}
    # the spec changes were seen before the operator observed them
    assert any(m.startswith("Waiting for the Pitstop operator") for m in seen["Progressing"])
    assert seen["Degraded"] == {"RolledBack"}
