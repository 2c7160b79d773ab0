"""The prebuilt-image path on the real control plane, with the real operator process.

Pods become Ready through the real controller-manager, scheduler and KWOK; nothing in
these tests writes a Deployment's or a pod's status.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

SELECTOR = "pitstop.dev/model-deployment=fraud"


def manifest(version: str = "1", replicas: int = 2) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud"},
            "spec": {
                "model": {"name": "fraud", "version": version},
                "image": f"registry.example.com/ml/fraud:{version}",
                "serving": {"replicas": replicas},
                # An immediate switch: these tests are about the reconcile, not pacing.
                "strategy": {"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "0s"}},
            },
        }
    )


def get(cluster: testing.DevCluster, namespace: str, *what: str) -> Any:
    return cluster.read(*what, namespace=namespace)


def model_deployment(cluster: testing.DevCluster, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = get(cluster, namespace, "modeldeployment", "fraud")
    return obj


def deployments(cluster: testing.DevCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "deployments", "-l", SELECTOR)["items"]
    return items


def healthy(cluster: testing.DevCluster, namespace: str, version: str) -> dict[str, Any] | None:
    obj = model_deployment(cluster, namespace)
    status = obj.get("status", {})
    ok = (
        status.get("phase") == "Healthy"
        and status.get("stable", {}).get("version") == version
        and status.get("observedGeneration") == obj["metadata"]["generation"]
    )
    return obj if ok else None


def wait_healthy(cluster: testing.DevCluster, namespace: str, version: str) -> dict[str, Any]:
    return cluster.wait(
        f"fraud v{version} Healthy", lambda: healthy(cluster, namespace, version), timeout=90
    )


def test_prebuilt_image_becomes_healthy_with_owned_children(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest())
    obj = wait_healthy(cluster, namespace, "1")
    status = obj["status"]
    revision = status["stable"]["revision"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "StableAvailable")
    assert status["traffic"]["summary"] == "100% stable"

    [deployment] = deployments(cluster, namespace)
    assert deployment["metadata"]["name"] == f"fraud-{revision}"
    assert deployment["status"]["readyReplicas"] == 2  # set by the controller-manager
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("ModelDeployment", obj["metadata"]["uid"])
    labels = deployment["metadata"]["labels"]
    assert labels["pitstop.dev/revision"] == revision
    assert labels["pitstop.dev/model-version"] == "1"

    services = {
        s["metadata"]["name"]: s
        for s in get(cluster, namespace, "services", "-l", SELECTOR)["items"]
    }
    assert set(services) == {"fraud", f"fraud-{revision}"}
    assert services["fraud"]["spec"]["selector"]["pitstop.dev/revision"] == revision
    # Nothing is mirrored, so there is no mirror ConfigMap (the pods mount it optional).
    assert get(cluster, namespace, "configmaps", "-l", SELECTOR)["items"] == []
    # The pods behind it exist (ReplicaSet controller, scheduler) and are Ready (KWOK).
    pods = get(cluster, namespace, "pods", "-l", f"pitstop.dev/revision={revision}")["items"]
    ready_pods = [p for p in pods if p["spec"].get("nodeName") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]  # fmt: skip
    assert len(ready_pods) == 2

    events = get(cluster, namespace, "events", "--field-selector", "involvedObject.name=fraud")
    assert "Healthy" in {e["reason"] for e in events["items"]}

    printed = cluster.kubectl("get", "md", "fraud", "-n", namespace).stdout
    assert "Healthy" in printed
    assert "100% stable" in printed

    # The log says what changed, not every watch event the operator handled (Kopf's
    # "Handler 'child_changed' succeeded." came a dozen times per ModelDeployment).
    logged = operator.log_path.read_text()
    assert f"{namespace}/fraud Healthy" in logged
    assert "Handler '" not in logged


def test_replica_change_updates_in_place_and_generation_is_followed(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest(replicas=2))
    before = wait_healthy(cluster, namespace, "1")
    [first] = deployments(cluster, namespace)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest(replicas=3))

    def scaled() -> dict[str, Any] | None:
        obj = healthy(cluster, namespace, "1")
        items = deployments(cluster, namespace)
        ok = obj and len(items) == 1 and items[0]["status"].get("readyReplicas") == 3
        return obj if ok else None

    after = cluster.wait("3 ready replicas", scaled, timeout=90)
    [second] = deployments(cluster, namespace)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["status"]["stable"]["revision"] == before["status"]["stable"]["revision"]
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]


def test_new_version_replaces_the_old_and_history_records_it(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("1"))
    old = wait_healthy(cluster, namespace, "1")["status"]["stable"]["revision"]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("2"))
    obj = wait_healthy(cluster, namespace, "2")
    new = obj["status"]["stable"]["revision"]
    assert new != old
    history = [(h["revision"], h["outcome"]) for h in obj["status"]["history"]]
    assert history == [(old, "Retired"), (new, "Promoted")]
    # The old revision is retired: scaled to zero, kept for `pitstop undo`.
    cluster.wait(
        "old revision scaled to zero",
        lambda: (
            {d["metadata"]["name"]: d["spec"]["replicas"] for d in deployments(cluster, namespace)}
            == {f"fraud-{new}": 2, f"fraud-{old}": 0}
        ),
    )


def test_deleting_removes_children_through_garbage_collection(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest())
    wait_healthy(cluster, namespace, "1")
    operator.stop()  # prove the real garbage collector, not the operator, removes them
    cluster.kubectl("delete", "modeldeployment", "fraud", "-n", namespace, "--wait=false")

    def gone() -> bool:
        left = get(cluster, namespace, "deployments,services,replicasets,pods", "-l", SELECTOR)
        return left is not None and left["items"] == []

    cluster.wait("children garbage-collected", gone, timeout=90)


def test_operator_killed_at_any_point_converges_without_duplicates(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("1"))
    # Killed as soon as its first child exists, before it could write Healthy.
    cluster.wait("first Deployment", lambda: deployments(cluster, namespace), timeout=60)
    operator.kill()
    operator.start()
    wait_healthy(cluster, namespace, "1")

    # Killed in the middle of replacing v1 with v2, then again right after restart.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("2"))
    cluster.wait(
        "v2 Deployment",
        lambda: any(d["metadata"]["labels"]["pitstop.dev/model-version"] == "2"
                    for d in deployments(cluster, namespace)),
        timeout=60,
    )  # fmt: skip
    operator.kill()
    operator.start()
    operator.kill()
    operator.start()
    obj = wait_healthy(cluster, namespace, "2")
    revision = obj["status"]["stable"]["revision"]

    def serving() -> list[str]:
        items = deployments(cluster, namespace)
        return [d["metadata"]["name"] for d in items if d["spec"]["replicas"]]

    cluster.wait("exactly one serving Deployment", lambda: serving() == [f"fraud-{revision}"])
    assert len(deployments(cluster, namespace)) == 2  # v1 retired at zero replicas, no duplicate
    names = [
        s["metadata"]["name"] for s in get(cluster, namespace, "services", "-l", SELECTOR)["items"]
    ]
    assert len(names) == len(set(names)) == 3  # entry + one per revision
    outcomes = [h["outcome"] for h in obj["status"]["history"]]
    assert outcomes == ["Retired", "Promoted"]
