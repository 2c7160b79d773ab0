"""In-cluster image builds on the real control plane, with the real operator process.

Build Jobs are created by the operator and accepted by the real API server; the real
Job controller runs them (deadline, failure), the scheduler places their pods and KWOK
plays the kubelet: a build pod stays Running until the test annotates its outcome, as
if the builder had finished. KWOK pods write no logs and no termination messages, so
the image is referenced by its tag (the build key) and failures report the pod status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop.devcluster import stages, testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

REGISTRY = "registry.example.com/ml"
ROLE_BUILD = "pitstop.dev/role=build"


@pytest.fixture
def namespace(cluster: testing.DevCluster) -> Iterator[str]:
    """Build Jobs run in the ModelDeployment's namespace for now, and their pods cannot
    meet `restricted`: rootless BuildKit (the default builder) needs seccomp and
    AppArmor Unconfined, which `baseline` forbids too, so only `privileged` admits it
    (kaniko, which runs as root, would need `baseline`). Model pods, admitted at
    `restricted`, are checked in every other test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.create_namespace(name, pod_security="privileged")
    try:
        yield name
    finally:
        cluster.delete_namespace(name)


@pytest.fixture
def builder(
    cluster: testing.DevCluster,
    crd: str,
    operator_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[OperatorProcess]:
    """The operator with a short retry policy: 2 attempts, 1 s backoff."""
    monkeypatch.setenv("PITSTOP_BUILD_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PITSTOP_BUILD_BACKOFF_SECONDS", "1")
    process = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
    process.assert_not_refused()


def built(name: str, version: str = "1", timeout: str = "30m", uri: str = "") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {
                    "name": "fraud",
                    "version": version,
                    "source": {
                        "uri": uri or f"https://models.example.com/fraud-{version}.bentomodel"
                    },
                },
                "build": {"registry": REGISTRY, "pushSecret": "regcred", "timeout": timeout},
                "serving": {"replicas": 1},
            },
        }
    )


def prebuilt(name: str, version: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"name": "fraud", "version": version},
                "image": f"{REGISTRY}/fraud:prebuilt-{version}",
                "serving": {"replicas": 1},
            },
        }
    )


def get(cluster: testing.DevCluster, namespace: str, *what: str) -> Any:
    done = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def jobs(cluster: testing.DevCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, namespace, "jobs", "-l", ROLE_BUILD)["items"]
    return sorted(items, key=lambda j: int(j["metadata"]["labels"]["pitstop.dev/build-attempt"]))


def wait_jobs(cluster: testing.DevCluster, namespace: str, count: int) -> list[dict[str, Any]]:
    return cluster.wait(
        f"{count} build job(s)", lambda: (found := jobs(cluster, namespace)) and
        len(found) == count and found, timeout=60,
    )  # fmt: skip


def finish(cluster: testing.DevCluster, namespace: str, job: str, outcome: str) -> None:
    """Play the builder: end the job's pod once KWOK runs it."""

    def running_pod() -> str | None:
        pods = get(cluster, namespace, "pods", "-l", f"batch.kubernetes.io/job-name={job}")
        for pod in pods["items"]:
            if pod.get("status", {}).get("phase") == "Running":
                return str(pod["metadata"]["name"])
        return None

    pod = cluster.wait(f"running pod of {job}", running_pod, timeout=60)
    cluster.kubectl(
        "annotate", "pod", pod, "-n", namespace, f"{stages.OUTCOME_ANNOTATION}={outcome}"
    )


def condition(cluster: testing.DevCluster, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(cluster, namespace, "modeldeployment", name)
    for item in (obj or {}).get("status", {}).get("conditions", []):
        if item["type"] == "ImageBuilt":
            return dict(item)
    return None


def wait_image_built(
    cluster: testing.DevCluster, namespace: str, name: str, status: str, reason: str
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = condition(cluster, namespace, name)
        return found if found and (found["status"], found["reason"]) == (status, reason) else None

    return cluster.wait(f"{name} ImageBuilt {status}/{reason}", reached, timeout=90)


def deployment_images(cluster: testing.DevCluster, namespace: str, name: str) -> set[str]:
    items = get(cluster, namespace, "deployments", "-l", f"pitstop.dev/model-deployment={name}")
    return {c["image"] for d in items["items"] for c in d["spec"]["template"]["spec"]["containers"]}


def test_a_build_job_runs_rootless_and_its_image_is_deployed(
    cluster: testing.DevCluster, namespace: str, builder: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built("fraud"))
    [job] = wait_jobs(cluster, namespace, 1)
    building = wait_image_built(cluster, namespace, "fraud", "False", "Building")
    assert "attempt 1/2" in building["message"]
    obj = get(cluster, namespace, "modeldeployment", "fraud")
    assert obj["status"]["phase"] == "Building"

    # What the API server accepted: one attempt, bounded, owned, rootless, unprivileged.
    spec, meta = job["spec"], job["metadata"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 1800)
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("ModelDeployment", obj["metadata"]["uid"])
    pod = spec["template"]["spec"]
    [prepare], [build] = pod["initContainers"], pod["containers"]
    assert prepare["command"] == ["pitstop", "package", "prepare-build"]
    assert build["securityContext"]["privileged"] is False
    assert build["securityContext"]["runAsUser"] == 1000
    assert build["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    key = meta["labels"]["pitstop.dev/build-key"]
    image = f"{REGISTRY}/fraud:1-{key}"
    assert f"name={image},push=true" in build["command"][-1]

    finish(cluster, namespace, meta["name"], stages.SUCCEED)
    done = wait_image_built(cluster, namespace, "fraud", "True", "Built")
    assert image in done["message"]
    cluster.wait(
        "the built image deployed",
        lambda: deployment_images(cluster, namespace, "fraud") == {image},
        timeout=60,
    )
    record = get(cluster, namespace, "configmap", f"pitstop-build-{key}")
    assert record["data"]["image"] == image
    assert len(jobs(cluster, namespace)) == 1  # built once


def test_failed_builds_are_retried_a_bounded_number_of_times_and_stable_keeps_serving(
    cluster: testing.DevCluster, namespace: str, builder: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=prebuilt("fraud", "1"))
    stable_image = f"{REGISTRY}/fraud:prebuilt-1"
    cluster.wait(
        "prebuilt v1 deployed",
        lambda: deployment_images(cluster, namespace, "fraud") == {stable_image},
        timeout=60,
    )
    healthy = cluster.wait(
        "v1 stable",
        lambda: (
            (get(cluster, namespace, "modeldeployment", "fraud") or {})
            .get("status", {})
            .get("stable")
        ),
        timeout=90,
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built("fraud", "2"))

    [first] = wait_jobs(cluster, namespace, 1)
    finish(cluster, namespace, first["metadata"]["name"], stages.FAIL)
    _, second = wait_jobs(cluster, namespace, 2)
    assert second["metadata"]["labels"]["pitstop.dev/build-attempt"] == "2"
    finish(cluster, namespace, second["metadata"]["name"], stages.FAIL)

    failed = wait_image_built(cluster, namespace, "fraud", "False", "BuildFailed")
    assert "build attempt 2/2" in failed["message"]
    assert "exit code 1 (Error)" in failed["message"]  # KWOK writes no log: the pod status
    events = get(cluster, namespace, "events", "--field-selector", "involvedObject.name=fraud")
    reasons = [e["reason"] for e in events["items"]]
    assert reasons.count("BuildFailed") == 2  # one per failed attempt, not per reconcile

    # Bounded: no third attempt, and the stable revision still serves.
    status = get(cluster, namespace, "modeldeployment", "fraud")["status"]
    assert status["stable"]["revision"] == healthy["revision"]
    assert len(jobs(cluster, namespace)) == 2
    assert deployment_images(cluster, namespace, "fraud") == {stable_image}
    entry = get(cluster, namespace, "service", "fraud")
    assert entry["spec"]["selector"]["pitstop.dev/revision"] == healthy["revision"]


def test_a_build_that_runs_past_its_timeout_fails_as_timed_out(
    cluster: testing.DevCluster, namespace: str, builder: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built("fraud", timeout="2s"))
    timed_out = wait_image_built(cluster, namespace, "fraud", "False", "BuildTimedOut")
    assert "timed out" in timed_out["message"]
    finished = jobs(cluster, namespace)
    assert len(finished) == 2
    for job in finished:  # the real Job controller enforced activeDeadlineSeconds
        reasons = {c["reason"] for c in job["status"]["conditions"] if c["type"] == "Failed"}
        assert reasons == {"DeadlineExceeded"}
    events = get(cluster, namespace, "events", "--field-selector", "involvedObject.name=fraud")
    assert "BuildTimedOut" in {e["reason"] for e in events["items"]}


def test_two_model_deployments_of_one_package_share_one_build(
    cluster: testing.DevCluster, namespace: str, builder: OperatorProcess
) -> None:
    for name in ("fraud-eu", "fraud-us"):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built(name))
    for name in ("fraud-eu", "fraud-us"):
        wait_image_built(cluster, namespace, name, "False", "Building")
    [job] = wait_jobs(cluster, namespace, 1)
    finish(cluster, namespace, job["metadata"]["name"], stages.SUCCEED)
    image = f"{REGISTRY}/fraud:1-{job['metadata']['labels']['pitstop.dev/build-key']}"
    for name in ("fraud-eu", "fraud-us"):
        wait_image_built(cluster, namespace, name, "True", "Built")
        cluster.wait(
            f"{name} runs the shared image",
            lambda name=name: deployment_images(cluster, namespace, name) == {image},
            timeout=60,
        )
    assert len(jobs(cluster, namespace)) == 1

    # A later ModelDeployment of the same package reuses the record: no new Job.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built("fraud-ap"))
    wait_image_built(cluster, namespace, "fraud-ap", "True", "Built")
    assert len(jobs(cluster, namespace)) == 1
