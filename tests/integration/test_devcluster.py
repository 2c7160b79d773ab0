"""The local control plane behaves like a cluster: the contract the operator's tests rely on.

Each test states one property: the version we built, Deployments becoming available
through the real controller-manager, scheduler and KWOK, Jobs whose pods end as a test
directs, garbage collection by owner references, and `up`/`down` that are idempotent
and clean.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

import pytest
from kubernetes import client as k8s_client
from pitstop.devcluster import binaries, chaos, processes, stages
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster.testing import TEST_POD_CIDR, DevCluster

pytestmark = pytest.mark.integration


# Test namespaces enforce the restricted Pod Security Standard.
_RESTRICTED_POD = {"securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                       "seccompProfile": {"type": "RuntimeDefault"}}}  # fmt: skip
_RESTRICTED_CONTAINER = {"securityContext": {"allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}}}  # fmt: skip


def _deployment(name: str, replicas: int, image: str = "example.invalid/app:1") -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        **_RESTRICTED_POD,
                        "containers": [
                            {
                                "name": "main",
                                "image": image,
                                **_RESTRICTED_CONTAINER,
                            }
                        ],
                    },
                },
            },
        }
    )


def _job(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        **_RESTRICTED_POD,
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "main",
                                "image": "example.invalid/job:1",
                                **_RESTRICTED_CONTAINER,
                            }
                        ],
                    }
                },
            },
        }
    )


def _get(cluster: DevCluster, namespace: str, *what: str) -> Any:
    return cluster.read(*what, namespace=namespace)


def _job_pod(cluster: DevCluster, namespace: str, job: str) -> dict[str, Any] | None:
    pods = _get(cluster, namespace, "pods", "-l", f"job-name={job}")
    running = [p for p in (pods or {}).get("items", []) if p["status"].get("phase") == "Running"]
    return running[0] if running else None


def _job_condition(cluster: DevCluster, namespace: str, job: str, kind: str) -> bool:
    obj = _get(cluster, namespace, "job", job) or {}
    return any(
        c["type"] == kind and c["status"] == "True"
        for c in obj.get("status", {}).get("conditions", [])
    )


def test_version_is_the_one_built(cluster: DevCluster) -> None:
    with cluster.api_client() as api:
        version = k8s_client.VersionApi(api).get_code()
    assert version.git_version == binaries.KUBERNETES_VERSION
    assert version.git_tree_state == "clean"
    client_version = json.loads(cluster.kubectl("version", "--client", "-o", "json").stdout)
    assert client_version["clientVersion"]["gitVersion"] == binaries.KUBERNETES_VERSION


def test_fake_nodes_are_ready_with_loopback_pod_cidrs(cluster: DevCluster) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == devcluster.NODE_COUNT
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True"
        cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
        assert cidr.subnet_of(ipaddress.ip_network(TEST_POD_CIDR))


def test_the_cluster_holds_a_scale_benchmark(cluster: DevCluster, namespace: str) -> None:
    """Room for 1,000 ModelDeployments mid-rollout: 4,000 pods and 3,000 Services (a /24
    of Services and 2 x 250 pods ran out at about 126)."""
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert sum(int(n["status"]["allocatable"]["pods"]) for n in nodes) >= 4000
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "far"},
               "spec": {"clusterIP": "10.0.11.184", "ports": [{"port": 80}]}}  # fmt: skip
    # The API server refuses a ClusterIP outside its Service range.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(service))
    assert _get(cluster, namespace, "service", "far")["spec"]["clusterIP"] == "10.0.11.184"


def test_deployment_becomes_available(cluster: DevCluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("web", 3))

    cluster.wait(
        "Deployment web available",
        lambda: (
            (_get(cluster, namespace, "deployment", "web") or {})
            .get("status", {})
            .get("availableReplicas")
            == 3
        ),
    )
    pods = _get(cluster, namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"].startswith("kwok-node-")
        # Pod IPs are loopback addresses, so a test harness can serve on them.
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(TEST_POD_CIDR)


def _waiting(
    cluster: DevCluster, namespace: str, app: str, reason: str, *, never_ready: bool = True
) -> Any:
    """The pod of `app` once its container waits for `reason` (and was never Ready)."""

    def probe() -> Any:
        pods = _get(cluster, namespace, "pods", "-l", f"app={app}")["items"]
        for pod in pods:
            ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            assert not never_ready or ready.get("Ready") != "True", f"{app} became Ready"
            for container in pod["status"].get("containerStatuses") or []:
                if (container["state"].get("waiting") or {}).get("reason") == reason:
                    return pod
        return None

    return cluster.wait(f"{app} waiting in {reason}", probe)


@pytest.mark.parametrize(
    ("image", "reason", "phase"),
    [
        (f"{chaos.UNPULLABLE_REGISTRY}/ml/app:1", "ImagePullBackOff", "Pending"),
        (f"example.invalid/ml/app:1{chaos.CRASH_LOOP_TAG_SUFFIX}", "CrashLoopBackOff", "Running"),
    ],
)
def test_pods_fated_by_their_image_never_become_ready(
    cluster: DevCluster, namespace: str, image: str, reason: str, phase: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("doomed", 2, image))
    pod = _waiting(cluster, namespace, "doomed", reason)
    assert pod["status"]["phase"] == phase
    deployment = _get(cluster, namespace, "deployment", "doomed")
    assert deployment["status"].get("readyReplicas", 0) == 0


def test_a_ready_pod_annotated_to_crash_loses_its_readiness(
    cluster: DevCluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("fine", 1))
    ready = cluster.wait(
        "fine available",
        lambda: (
            (_get(cluster, namespace, "deployment", "fine") or {})
            .get("status", {})
            .get("readyReplicas")
        ),
    )
    assert ready == 1
    name = _get(cluster, namespace, "pods", "-l", "app=fine")["items"][0]["metadata"]["name"]
    ip = _get(cluster, namespace, "pod", name)["status"]["podIP"]

    cluster.kubectl("annotate", "-n", namespace, "pod", name,
                    f"{chaos.FATE_ANNOTATION}={chaos.CRASH_LOOP}")  # fmt: skip

    pod = _waiting(cluster, namespace, "fine", "CrashLoopBackOff", never_ready=False)
    assert (pod["metadata"]["name"], pod["status"]["podIP"]) == (name, ip)  # the same pod
    cluster.wait(
        "no ready replica left",
        lambda: not _get(cluster, namespace, "deployment", "fine")["status"].get("readyReplicas"),
    )


@pytest.mark.parametrize(
    ("outcome", "phase", "condition"),
    [(stages.SUCCEED, "Succeeded", "Complete"), (stages.FAIL, "Failed", "Failed")],
)
def test_job_pod_ends_as_the_test_directs(
    cluster: DevCluster, namespace: str, outcome: str, phase: str, condition: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_job("build"))
    pod = cluster.wait("Job pod Running", lambda: _job_pod(cluster, namespace, "build"))
    name = pod["metadata"]["name"]
    # Without an outcome the pod stays Running, and the Job with it.
    assert not _job_condition(cluster, namespace, "build", condition)

    cluster.kubectl(
        "annotate", "-n", namespace, "pod", name, f"{stages.OUTCOME_ANNOTATION}={outcome}"
    )

    cluster.wait(
        f"Job condition {condition}",
        lambda: _job_condition(cluster, namespace, "build", condition),
    )
    ended = _get(cluster, namespace, "pod", name)
    assert ended["status"]["phase"] == phase
    exit_code = ended["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
    assert exit_code == (0 if outcome == stages.SUCCEED else 1)


def test_deleting_a_deployment_collects_its_replicasets_and_pods(
    cluster: DevCluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("gc", 2))
    cluster.wait(
        "Deployment gc available",
        lambda: (
            (_get(cluster, namespace, "deployment", "gc") or {})
            .get("status", {})
            .get("availableReplicas")
            == 2
        ),
    )

    cluster.kubectl("delete", "-n", namespace, "deployment", "gc", "--wait=false")

    cluster.wait(
        "ReplicaSets and pods of gc collected",
        lambda: not _get(cluster, namespace, "replicasets,pods", "-l", "app=gc")["items"],
    )


def test_up_on_a_running_cluster_returns_the_same_cluster(cluster: DevCluster) -> None:
    again = devcluster.Cluster(cluster.state_dir, pod_cidr=TEST_POD_CIDR).up()

    assert again == cluster.info
    assert all(processes.alive(p) for p in again.processes)


def test_down_leaves_no_process_and_no_port(tmp_path_factory: pytest.TempPathFactory) -> None:
    # A second, one-node cluster of its own: the session's cluster stays up.
    small = devcluster.Cluster(tmp_path_factory.mktemp("small"), pod_cidr="127.202.0.0/16", nodes=1)
    info = small.up()
    assert all(
        processes.port_open(port) for name, port in info.ports.items() if name != "etcd-peer"
    )

    small.down()

    assert not any(processes.alive(p) for p in info.processes)
    for proc in info.processes:
        assert not os.path.exists(f"/proc/{proc.pid}") or not processes.alive(proc)
    assert not any(processes.port_open(port) for port in info.ports.values())
    assert small.info() is None
    small.down()  # idempotent


def test_a_service_lists_a_pod_that_is_not_ready_as_not_ready(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """What the `service` traffic provider relies on (and what tests reading a Service's
    pods by its selector and their Ready condition assume): the EndpointSlice controller
    marks a pod that is not Ready (here one crash-looping after it ran) not ready, so
    users reach only ready pods. EndpointSlices refuse loopback pod IPs, so this runs on
    a one-node cluster of its own with a routable range (which nothing serves on)."""
    routable = devcluster.Cluster(
        tmp_path_factory.mktemp("routable"), pod_cidr="10.244.0.0/16", nodes=1
    )
    cluster = DevCluster(routable.up())
    try:
        cluster.kubectl("apply", "-f", "-", input=_deployment("web", 2))
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}  # fmt: skip
        cluster.kubectl("apply", "-f", "-", input=json.dumps(service))

        def endpoints() -> dict[str, bool]:
            slices = _get(cluster, "default", "endpointslices",
                          "-l", "kubernetes.io/service-name=web")["items"]  # fmt: skip
            return {e["targetRef"]["name"]: bool(e["conditions"].get("ready"))
                    for s in slices for e in s.get("endpoints") or []}  # fmt: skip

        both = cluster.wait("two ready endpoints", lambda: (found := endpoints()) and
                            list(found.values()) == [True, True] and found)  # fmt: skip
        crashing = sorted(both)[0]
        cluster.kubectl("annotate", "pod", crashing, f"{chaos.FATE_ANNOTATION}={chaos.CRASH_LOOP}")
        after = cluster.wait(
            "one of them not ready", lambda: not endpoints()[crashing] and endpoints()
        )
        assert after == {crashing: False, sorted(both)[1]: True}
    finally:
        routable.down()
