"""In-cluster image builds on the real control plane, with the real operator process.

ModelDeployments live in namespaces that enforce Pod Security `restricted`; their build
Jobs run in the release's build namespace, which the chart created at `privileged`
(rootless BuildKit needs seccomp and AppArmor Unconfined). The real API server admits
(or refuses) the pods, the real Job controller runs the Jobs (deadline, failure,
suspension), the real garbage collector deletes an attempt's Secret copies with its Job,
the scheduler places the pods and KWOK plays the kubelet: a build pod stays Running
until the test annotates its outcome (and its termination message: a kubelet puts the
log's tail there on failure, the builder writes the pushed digest there on success).

Every test builds a model of its own name, so the build namespace's records (shared by
all namespaces, by design) never make one test's build another's.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import install, stages, testing
from pitstop.devcluster.operator_process import OperatorProcess
from pitstop.rendering import build_job

pytestmark = pytest.mark.integration

REGISTRY = "registry.example.com/ml"
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def builds(cluster: testing.DevCluster, release: install.Release) -> str:
    """The release's build namespace, as the chart created it."""
    ns = get(cluster, "", "namespace", release.build_namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    return release.build_namespace


@pytest.fixture
def builder(
    cluster: testing.DevCluster,
    crd: str,
    operator_kubeconfig: Path,
    builds: str,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[OperatorProcess]:
    """The operator, told where builds run, with a short retry policy (2 attempts, 1 s
    backoff) and a 1 s look at running builds (their Jobs are outside the watched
    namespaces)."""
    monkeypatch.setenv("PITSTOP_BUILD_NAMESPACE", builds)
    monkeypatch.setenv("PITSTOP_BUILD_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PITSTOP_BUILD_BACKOFF_SECONDS", "1")
    monkeypatch.setenv("PITSTOP_BUILD_POLL_SECONDS", "1")
    process = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
    process.assert_not_refused()


@pytest.fixture
def model() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


def built(
    name: str,
    model: str,
    version: str = "1",
    timeout: str = "30m",
    push_secret: str | None = None,
    credentials: str | None = None,
) -> str:
    source: dict[str, Any] = {"uri": f"https://models.example.com/{model}-{version}.bentomodel"}
    if credentials:
        source["credentialsSecret"] = credentials
    build: dict[str, Any] = {"registry": REGISTRY, "timeout": timeout}
    if push_secret:
        build["pushSecret"] = push_secret
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"name": model, "version": version, "source": source},
                "build": build,
                "serving": {"replicas": 1},
            },
        }
    )


def prebuilt(name: str, model: str, version: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"name": model, "version": version},
                "image": f"{REGISTRY}/{model}:prebuilt-{version}",
                "serving": {"replicas": 1},
            },
        }
    )


def get(cluster: testing.DevCluster, namespace: str, *what: str) -> Any:
    return cluster.read(*what, namespace=namespace or None)


def jobs(cluster: testing.DevCluster, namespace: str, model: str) -> list[dict[str, Any]]:
    selector = f"pitstop.dev/role=build,pitstop.dev/model={model}"
    items: list[dict[str, Any]] = get(cluster, namespace, "jobs", "-l", selector)["items"]
    return sorted(items, key=lambda j: int(j["metadata"]["labels"]["pitstop.dev/build-attempt"]))


def wait_jobs(
    cluster: testing.DevCluster, namespace: str, model: str, count: int
) -> list[dict[str, Any]]:
    def counted() -> list[dict[str, Any]] | None:
        found = jobs(cluster, namespace, model)
        return found if len(found) == count else None

    return cluster.wait(f"{count} build job(s) of {model} in {namespace}", counted, timeout=60)


def finish(
    cluster: testing.DevCluster, namespace: str, job: str, outcome: str, message: str = ""
) -> None:
    """Play the builder: end the job's pod once KWOK runs it (the pod was admitted)."""

    def running_pod() -> str | None:
        pods = get(cluster, namespace, "pods", "-l", f"batch.kubernetes.io/job-name={job}")
        for pod in pods["items"]:
            if pod.get("status", {}).get("phase") == "Running":
                return str(pod["metadata"]["name"])
        return None

    pod = cluster.wait(f"running pod of {job}", running_pod, timeout=60)
    notes = [f"{stages.OUTCOME_ANNOTATION}={outcome}"]
    if message:
        notes.append(f"{stages.MESSAGE_ANNOTATION}={message}")
    cluster.kubectl("annotate", "pod", pod, "-n", namespace, *notes)


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


def wait_deployed(cluster: testing.DevCluster, namespace: str, name: str, image: str) -> None:
    cluster.wait(
        f"{name} runs {image}",
        lambda: deployment_images(cluster, namespace, name) == {image},
        timeout=60,
    )


def secret(cluster: testing.DevCluster, namespace: str, name: str, data: dict[str, str]) -> None:
    docker = ".dockerconfigjson" in data
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson" if docker else "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def test_a_build_runs_in_the_build_namespace_with_copies_of_its_secrets(
    cluster: testing.DevCluster, namespace: str, builds: str, model: str, builder: OperatorProcess
) -> None:
    manifest = built("fraud", model, push_secret="regcred", credentials="model-source")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

    # Its Secrets do not exist yet: nothing starts, and the condition says what is missing.
    waiting = wait_image_built(cluster, namespace, "fraud", "False", "BuildInputMissing")
    assert f"Secret {namespace}/regcred" in waiting["message"]
    assert f"Secret {namespace}/model-source" in waiting["message"]
    assert get(cluster, namespace, "modeldeployment", "fraud")["status"]["phase"] == "Pending"
    assert jobs(cluster, builds, model) == []
    auth = json.dumps({"auths": {"registry.example.com": {"auth": "dTpw"}}})
    secret(cluster, namespace, "regcred", {".dockerconfigjson": auth})
    secret(cluster, namespace, "model-source", {"HTTP_BEARER_TOKEN": "t0ken"})

    [job] = wait_jobs(cluster, builds, model, 1)
    wait_image_built(cluster, namespace, "fraud", "False", "Building")
    meta, spec = job["metadata"], job["spec"]
    # No owner across namespaces; who asked is an annotation; nothing in the user's namespace.
    assert "ownerReferences" not in meta
    assert meta["annotations"]["pitstop.dev/requested-by"] == f"{namespace}/fraud"
    assert get(cluster, namespace, "jobs")["items"] == []
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 1800)
    key = meta["labels"]["pitstop.dev/build-key"]
    image = f"{REGISTRY}/{model}:1-{key}"
    pod = spec["template"]["spec"]
    [build] = pod["containers"]
    assert build["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    assert f"name={image},push=true" in build["command"][-1]

    # The copies: same data, owned by the attempt's Job, which was resumed once they existed.
    copies = get(cluster, builds, "secrets", "-l", f"pitstop.dev/build-key={key}")["items"]
    by_origin = {c["metadata"]["annotations"]["pitstop.dev/copied-from"]: c for c in copies}
    assert set(by_origin) == {f"{namespace}/regcred", f"{namespace}/model-source"}
    push = by_origin[f"{namespace}/regcred"]
    assert base64.b64decode(push["data"][".dockerconfigjson"]).decode() == auth
    assert push["type"] == "kubernetes.io/dockerconfigjson"
    for copy in copies:
        [owner] = copy["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"]) == ("Job", meta["uid"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["docker-config"]["secret"]["secretName"] == push["metadata"]["name"]
    resumed = cluster.wait(
        "the job resumed",
        lambda: (found := jobs(cluster, builds, model)) and not found[0]["spec"].get("suspend"),
    )
    assert resumed

    # Why it runs there: the ModelDeployment's namespace (restricted) refuses its pod.
    as_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"}, "spec": pod}
    refused = cluster.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-",
                              input=json.dumps(as_pod), check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr

    finish(cluster, builds, meta["name"], stages.SUCCEED, message=DIGEST)
    done = wait_image_built(cluster, namespace, "fraud", "True", "Built")
    assert f"digest {DIGEST}" in done["message"]
    wait_deployed(cluster, namespace, "fraud", f"{image}@{DIGEST}")
    record = get(cluster, builds, "configmap", f"pitstop-build-{key}")
    assert (record["data"]["image"], record["data"]["digest"]) == (image, DIGEST)
    assert len(jobs(cluster, builds, model)) == 1  # built once

    # The copies go with their Job (the garbage collector, not the operator, deletes them).
    cluster.kubectl("delete", "job", meta["name"], "-n", builds, "--cascade=background")
    cluster.wait(
        "the secret copies deleted with their job",
        lambda: (
            get(cluster, builds, "secrets", "-l", f"pitstop.dev/build-key={key}")["items"] == []
        ),
    )


def test_failed_builds_are_retried_a_bounded_number_of_times_and_stable_keeps_serving(
    cluster: testing.DevCluster, namespace: str, builds: str, model: str, builder: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=prebuilt("fraud", model, "1"))
    stable_image = f"{REGISTRY}/{model}:prebuilt-1"
    wait_deployed(cluster, namespace, "fraud", stable_image)
    healthy = cluster.wait(
        "v1 stable",
        lambda: (
            (get(cluster, namespace, "modeldeployment", "fraud") or {})
            .get("status", {})
            .get("stable")
        ),
        timeout=90,
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built("fraud", model, "2"))

    [first] = wait_jobs(cluster, builds, model, 1)
    assert first["spec"]["suspend"] is False  # no Secret to copy: it starts at once
    finish(cluster, builds, first["metadata"]["name"], stages.FAIL)
    _, second = wait_jobs(cluster, builds, model, 2)
    assert second["metadata"]["labels"]["pitstop.dev/build-attempt"] == "2"
    # What a kubelet writes as the termination message under FallbackToLogsOnError.
    tail = "ERROR: failed to push registry.example.com/ml: no such host"
    finish(cluster, builds, second["metadata"]["name"], stages.FAIL, message=tail)

    failed = wait_image_built(cluster, namespace, "fraud", "False", "BuildFailed")
    assert "build attempt 2/2" in failed["message"]
    assert f"build step: {tail}" in failed["message"]
    events = get(cluster, namespace, "events", "--field-selector", "involvedObject.name=fraud")
    reasons = [e["reason"] for e in events["items"]]
    assert reasons.count("BuildFailed") == 2  # one per failed attempt, not per reconcile
    assert any("exit code 1 (Error)" in e["message"] for e in events["items"])

    # Bounded: no third attempt, and the stable revision still serves.
    status = get(cluster, namespace, "modeldeployment", "fraud")["status"]
    assert status["stable"]["revision"] == healthy["revision"]
    assert len(jobs(cluster, builds, model)) == 2
    assert deployment_images(cluster, namespace, "fraud") == {stable_image}
    entry = get(cluster, namespace, "service", "fraud")
    assert entry["spec"]["selector"]["pitstop.dev/revision"] == healthy["revision"]


def test_a_build_that_runs_past_its_timeout_fails_as_timed_out(
    cluster: testing.DevCluster, namespace: str, builds: str, model: str, builder: OperatorProcess
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=built("fraud", model, timeout="2s"))
    timed_out = wait_image_built(cluster, namespace, "fraud", "False", "BuildTimedOut")
    assert "timed out" in timed_out["message"]
    finished = jobs(cluster, builds, model)
    assert len(finished) == 2
    for job in finished:  # the real Job controller enforced activeDeadlineSeconds
        reasons = {c["reason"] for c in job["status"]["conditions"] if c["type"] == "Failed"}
        assert reasons == {"DeadlineExceeded"}
    events = get(cluster, namespace, "events", "--field-selector", "involvedObject.name=fraud")
    assert "BuildTimedOut" in {e["reason"] for e in events["items"]}


@pytest.fixture
def other(cluster: testing.DevCluster) -> Iterator[str]:
    """A second team's namespace, restricted too."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.create_namespace(name, pod_security="restricted")
    try:
        yield name
    finally:
        cluster.delete_namespace(name)


def test_model_deployments_of_two_namespaces_share_one_build(
    cluster: testing.DevCluster,
    namespace: str,
    other: str,
    builds: str,
    model: str,
    builder: OperatorProcess,
) -> None:
    for where in (namespace, other):  # the same name in each: requesters are namespaced
        cluster.kubectl("apply", "-n", where, "-f", "-", input=built("fraud", model))
    for where in (namespace, other):
        wait_image_built(cluster, where, "fraud", "False", "Building")
    [job] = wait_jobs(cluster, builds, model, 1)
    finish(cluster, builds, job["metadata"]["name"], stages.SUCCEED)
    image = f"{REGISTRY}/{model}:1-{job['metadata']['labels']['pitstop.dev/build-key']}"
    for where in (namespace, other):
        wait_image_built(cluster, where, "fraud", "True", "Built")
        wait_deployed(cluster, where, "fraud", image)
    assert len(jobs(cluster, builds, model)) == 1

    # A later ModelDeployment of the same package reuses the record: no new Job.
    cluster.kubectl("apply", "-n", other, "-f", "-", input=built("fraud-ap", model))
    wait_image_built(cluster, other, "fraud-ap", "True", "Built")
    assert len(jobs(cluster, builds, model)) == 1


LEVELS: tuple[testing.PodSecurityLevel, ...] = ("restricted", "baseline", "privileged")


@pytest.fixture(scope="module")
def levels(cluster: testing.DevCluster) -> Iterator[dict[testing.PodSecurityLevel, str]]:
    """A namespace at each Pod Security level (only dry runs go there)."""
    names = {level: f"t-{level[:4]}-{uuid.uuid4().hex[:6]}" for level in LEVELS}
    for level, name in names.items():
        cluster.create_namespace(name, pod_security=level)
    try:
        yield names
    finally:
        for name in names.values():
            cluster.delete_namespace(name)


@pytest.mark.parametrize(("builder", "least"), [("buildkit", "privileged"), ("kaniko", "baseline")])
def test_each_builders_pod_is_admitted_at_its_level_and_refused_below(
    cluster: testing.DevCluster,
    levels: dict[testing.PodSecurityLevel, str],
    builder: str,
    least: testing.PodSecurityLevel,
) -> None:
    """Why the build namespace is `privileged` with BuildKit and `baseline` with kaniko
    only: the API server's PodSecurity admission, asked with the pods Pitstop renders."""
    spec = {
        "model": {"name": "fraud", "version": "1", "source": {"uri": "https://h/m.bentomodel"}},
        "build": {"registry": REGISTRY, "pushSecret": "regcred", "builder": builder},
    }  # fmt: skip
    md = ModelDeployment.model_validate({"metadata": {"name": "fraud", "namespace": "ml"},
                                         "spec": spec})  # fmt: skip
    settings = build_job.BuildSettings(operator_image="pitstop/operator:test")
    pod = build_job.job(md, "k" * 16, 1, settings)["spec"]["template"]["spec"]
    as_pod = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
                         "spec": pod})  # fmt: skip
    admitted = {}
    for level, name in levels.items():
        done = cluster.kubectl("create", "--dry-run=server", "-n", name, "-f", "-",
                               input=as_pod, check=False)  # fmt: skip
        assert done.returncode == 0 or "violates PodSecurity" in done.stderr, done.stderr
        admitted[level] = done.returncode == 0
    assert admitted == {level: LEVELS.index(level) >= LEVELS.index(least) for level in LEVELS}
