"""Automatic rollback on the real control plane, driven by a webhook metric.

The webhook is a real HTTP server on 127.0.0.1 whose answer the test sets: the
operator calls it every interval, counts failures against failureLimit and rolls back
by itself. (Rollbacks driven by the model servers' own metrics run in tests/e2e/.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from metric_webhook import Webhook, analysis  # beside this file
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration


def apply(cluster: testing.DevCluster, namespace: str, version: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "pitstop.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud"},
        "spec": {
            "model": {"name": "fraud", "version": version},
            "image": f"registry.example.com/ml/fraud:{version}",
            "serving": {"replicas": 2},
            **spec,
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))


def status(cluster: testing.DevCluster, namespace: str) -> dict[str, Any]:
    md = cluster.get("md", "fraud", namespace=namespace)
    assert md is not None
    found: dict[str, Any] = md.get("status", {})
    return found


def until(cluster: testing.DevCluster, namespace: str, what: str, check: Any) -> dict[str, Any]:
    return cluster.wait(
        what, lambda: s if check(s := status(cluster, namespace)) else None, timeout=90
    )


def test_failing_checks_roll_a_canary_back_by_themselves(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess, webhook: Webhook
) -> None:
    spec = {"strategy": {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1h", "minPause": "1h"}]}},
            "analysis": analysis(webhook.url)}  # fmt: skip
    apply(cluster, namespace, "1", spec)
    until(cluster, namespace, "v1 Healthy", lambda s: s.get("phase") == "Healthy")
    apply(cluster, namespace, "2", spec)
    progressing = until(cluster, namespace, "canary measured and passing",
                        lambda s: (s.get("analysis") or {}).get("verdict") == "Pass")  # fmt: skip
    candidate = progressing["candidate"]["revision"]
    assert webhook.calls[-1]["candidate"] == candidate

    webhook.passing = False
    rolled = until(cluster, namespace, "rolled back", lambda s: s.get("phase") == "RolledBack")
    assert rolled["rejectedRevision"] == candidate
    assert rolled["traffic"]["summary"] == "100% stable"
    assert rolled["analysis"]["failures"] == 2  # failureLimit 1: the second failure decides
    degraded = next(c for c in rolled["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert "gate" in degraded["message"]
    assert rolled["history"][-1]["outcome"] == "RolledBack"
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json",
                                        "--field-selector", "involvedObject.name=fraud").stdout)  # fmt: skip
    assert any(e["type"] == "Warning" and e["reason"] == "RolledBack" for e in events["items"])

    def replicas() -> dict[str, int]:
        deployments = cluster.get("deployments", namespace=namespace)
        assert deployments is not None
        return {d["metadata"]["labels"]["pitstop.dev/model-version"]: d["spec"]["replicas"]
                for d in deployments["items"]}  # fmt: skip

    # The status commits the rollback, then the candidate is scaled down.
    cluster.wait("the candidate scaled to zero", lambda: replicas() == {"1": 2, "2": 0})

    # Not retried by itself, even when the check passes again: only a spec change or retry.
    webhook.passing = True
    calls = len(webhook.calls)
    cluster.wait("a few more reconciles", lambda: status(cluster, namespace).get("phase") == "RolledBack"
                 and len(webhook.calls) == calls)  # fmt: skip
    assert "candidate" not in status(cluster, namespace)


def test_a_failure_after_the_switch_goes_back_to_the_previous_stable(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess, webhook: Webhook
) -> None:
    spec = {"strategy": {"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "0s"}},
            "analysis": analysis(webhook.url, postPromotionWindow="1h")}  # fmt: skip
    apply(cluster, namespace, "1", spec)
    v1 = until(cluster, namespace, "v1 Healthy", lambda s: s.get("phase") == "Healthy")["stable"]
    apply(cluster, namespace, "2", spec)
    switched = until(cluster, namespace, "switched to v2 with v1 kept",
                     lambda s: (s.get("stable") or {}).get("version") == "2" and "previous" in s)  # fmt: skip
    assert switched["previous"]["revision"] == v1["revision"]
    # No scale-down delay: through the hour-long window v1 waits at one pod.
    cluster.wait(
        "v1 at one pod in the window", lambda: replicas(cluster, namespace) == {"1": 1, "2": 2}
    )
    cluster.wait("its pod ready", lambda: ready(cluster, namespace).get("1") == 1)

    webhook.passing = False
    back = until(cluster, namespace, "back on v1",
                 lambda s: (s.get("stable") or {}).get("revision") == v1["revision"])  # fmt: skip
    assert back["phase"] == "RolledBack"  # it serves from its one pod while it grows
    assert back["rejectedRevision"] == switched["stable"]["revision"]
    assert [h["outcome"] for h in back["history"]][-2:] == ["RolledBack", "Promoted"]
    cluster.wait("v1 back at full size, v2 down",
                 lambda: replicas(cluster, namespace) == {"1": 2, "2": 0})  # fmt: skip
    full = until(cluster, namespace, "v1 ready at full size",
                 lambda s: "serves with 2/2 ready" in condition(s, "Ready"))  # fmt: skip
    assert full["phase"] == "RolledBack"
    assert "waitingSince" not in full["stable"]


def condition(found: dict[str, Any], type_: str) -> str:
    """The message of a condition in a status ("" when absent)."""
    return next(
        (c.get("message", "") for c in found.get("conditions", []) if c["type"] == type_), ""
    )


def replicas(cluster: testing.DevCluster, namespace: str) -> dict[str, int]:
    """Spec replicas of each revision's Deployment, by version."""
    return {d["metadata"]["labels"]["pitstop.dev/model-version"]: d["spec"]["replicas"]
            for d in deployments(cluster, namespace)}  # fmt: skip


def ready(cluster: testing.DevCluster, namespace: str) -> dict[str, int]:
    """Ready replicas of each revision's Deployment, by version."""
    return {d["metadata"]["labels"]["pitstop.dev/model-version"]:
            d.get("status", {}).get("readyReplicas", 0)
            for d in deployments(cluster, namespace)}  # fmt: skip


def deployments(cluster: testing.DevCluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.get("deployments", namespace=namespace)
    assert found is not None
    items: list[dict[str, Any]] = found["items"]
    return items
