"""Pitstop's own build Job, run for real on the node, and the model pod of what it built.

The Job is the one `rendering.build_job` renders for a ModelDeployment, with the
chart's builder settings pointed at images the node built itself (the operator's from
`operator/Dockerfile`, a rootless BuildKit of the node's binaries). Its init step
fetches the model package over HTTP, verifies it and writes BentoML's build context;
its build step runs BuildKit rootless in the pod and pushes the serving image to the
node's registry. The image, pulled by its manifest digest, then runs as the model
Deployment `rendering.children` renders, in a namespace enforcing `restricted`, and
answers its real readiness probe.

Only what the operator adds is left out: the test applies the rendered objects itself
(without the owner reference to a ModelDeployment that does not exist here).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import local_http
import numpy as np
import pandas as pd
import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import buildimages, gatewayplane, install, nodeconfig, processes, testing
from pitstop.rendering import build_job, children, labels
from sklearn.linear_model import LogisticRegression

# Whichever test comes first builds the images and runs the build Job (≈ 10 min).
pytestmark = [pytest.mark.realnode, pytest.mark.timeout(1800)]

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job_images(real_cluster: testing.DevCluster) -> dict[str, str]:
    """The builder images of the chart's `build.*` values, built on the node."""
    return {
        "operator": buildimages.operator_image(real_cluster.bin_dir, REPOSITORY_ROOT, print),
        "buildkit": buildimages.buildkit_image(real_cluster.bin_dir, print),
    }


@pytest.fixture(scope="module")
def packages(
    real_cluster: testing.DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Model packages made with `pitstop package create`, served over HTTP on the node's
    bridge, where build pods can fetch them: fraud 7 and 8 (two fits of one model), and
    fraud 9, whose recorded requirements no package index can satisfy."""
    folder = tmp_path_factory.mktemp("package")
    exported = folder / "out"
    exported.mkdir()
    _package(folder, exported, "7", seed=7)
    _package(folder, exported, "8", seed=8)
    _package(folder, exported, "9", seed=9, unsatisfiable=True)
    with serve_packages(exported) as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a line on stderr per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_packages(folder: Path) -> Iterator[str]:
    """Serves `folder` over HTTP on the node's bridge, where build pods can fetch from;
    yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((nodeconfig.gateway(), 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{nodeconfig.gateway()}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def package_url(packages: str) -> str:
    return f"{packages}/fraud-7.bentomodel"


# Packages record the library versions they were trained with, and the image pins them:
# a package claiming a scipy that was never released cannot be built.
UNSATISFIABLE = """\
import sys
from pitstop import cli
from pitstop.packaging import lineage
real = lineage.library_versions
lineage.library_versions = lambda: {**real(), "scipy": "0.0.0.dev0"}
sys.argv[0] = "pitstop"
cli.main()
"""


def _package(
    folder: Path, exported: Path, version: str, *, seed: int, unsatisfiable: bool = False
) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=[f"f{i}" for i in range(4)])
    frame["y"] = (frame["f0"] + frame["f1"] > 0).astype(int)
    model = LogisticRegression().fit(frame.drop(columns="y"), frame["y"])
    joblib.dump(model, folder / f"model-{version}.joblib")
    frame.to_parquet(folder / f"train-{version}.parquet")
    program = (
        [sys.executable, "-c", UNSATISFIABLE]
        if unsatisfiable
        else [str(Path(sys.executable).with_name("pitstop"))]
    )
    subprocess.run(
        [*program, "package", "create",
         str(folder / f"model-{version}.joblib"), "--data", str(folder / f"train-{version}.parquet"),
         "--name", "fraud", "--version", version, "--target", "y", "--export", str(exported)],
        env={**os.environ, "BENTOML_HOME": str(folder / "home"), "BENTOML_DO_NOT_TRACK": "true"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def _namespace(cluster: testing.DevCluster, level: testing.PodSecurityLevel) -> str:
    name = f"rn-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name, pod_security=level)
    return name


def _get(cluster: testing.DevCluster, *args: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def built(
    real_cluster: testing.DevCluster, job_images: dict[str, str], package_url: str
) -> dict[str, Any]:
    """The build Job of model fraud:7, run to its end: what it made and recorded."""
    # Build Jobs need seccomp and AppArmor unconfined (rootless BuildKit): privileged.
    builds = _namespace(real_cluster, "privileged")
    md = ModelDeployment.model_validate(
        {
            "metadata": {"name": "fraud", "namespace": builds, "uid": str(uuid.uuid4())},
            "spec": {
                "model": {"name": "fraud", "version": "7", "source": {"uri": package_url}},
                "build": {"registry": f"{nodeconfig.registry_host()}/models", "timeout": "25m"},
            },
        }
    )
    settings = build_job.BuildSettings(
        operator_image=job_images["operator"],
        buildkit_image=job_images["buildkit"],
        namespace=builds,
    )
    job = build_job.job(md, build_job.build_key(md, settings), 1, settings)
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(job))
    name = job["metadata"]["name"]

    def finished() -> dict[str, Any] | None:
        status = _get(real_cluster, "job", name, "-n", builds).get("status", {})
        return status if status.get("succeeded") or status.get("failed") else None

    status = real_cluster.wait("the build Job to finish", finished, timeout=1500, interval=2)
    [pod] = _get(real_cluster, "pods", "-n", builds, "-l", f"job-name={name}")["items"]
    [build] = pod["status"]["containerStatuses"]
    image = job["metadata"]["annotations"][build_job.IMAGE_ANNOTATION]
    crane = str(real_cluster.bin_dir / "crane")
    ok = status.get("succeeded") == 1
    return {
        "md": md,
        "succeeded": ok,
        "recorded": build["state"]["terminated"].get("message", "").strip(),
        "image": image,
        "manifest": _run(crane, "digest", "--insecure", image).decode().strip() if ok else "",
        "config": "sha256:" + hashlib.sha256(_run(crane, "config", "--insecure", image)).hexdigest()
        if ok
        else "",
    }


def _run(*args: str) -> bytes:
    return subprocess.run(list(args), check=True, capture_output=True).stdout


def test_the_build_job_builds_and_pushes_the_serving_image(built: dict[str, Any]) -> None:
    assert built["succeeded"], f"build failed: {built['recorded'][-3000:]}"
    # What the Job recorded is the manifest digest the registry serves, which pods pull
    # by; not the config digest that BuildKit's metadata file also holds.
    assert built["recorded"] == built["manifest"] != built["config"]
    print(f"built {built['image']}: manifest {built['manifest']}, recorded {built['recorded']}")


def _pinned(built: dict[str, Any]) -> str:
    assert built["succeeded"]
    return f"{built['image'].rsplit(':', 1)[0]}@{built['manifest']}"


def test_the_built_image_runs_as_the_rendered_model_deployment_restricted(
    real_cluster: testing.DevCluster, built: dict[str, Any]
) -> None:
    md: ModelDeployment = built["md"]
    serving = _namespace(real_cluster, "restricted")
    md_serving = md.model_copy(
        update={"metadata": md.metadata.model_copy(update={"namespace": serving})}
    )
    pinned = _pinned(built)
    revision = children.revision_of(children.pod_template(md_serving, pinned))
    deployment = children.deployment(md_serving, pinned, revision, 1)
    service = children.revision_service(md_serving, revision)
    for obj in (deployment, service):
        obj["metadata"].pop("ownerReferences", None)
        real_cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))

    pod = real_cluster.wait(
        "the model pod Ready (its /readyz probe)",
        lambda: _ready_pod(real_cluster, serving),
        timeout=300,
    )
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(built["manifest"])
    service_ip = _get(real_cluster, "service", service["metadata"]["name"], "-n", serving)["spec"][
        "clusterIP"
    ]
    port = service["spec"]["ports"][0]["port"]
    assert real_cluster.wait(
        "the model's /livez through its Service",
        lambda: _status(f"http://{service_ip}:{port}/livez") == 200,
    )


@pytest.fixture(scope="module")
def operator(real_cluster: testing.DevCluster, job_images: dict[str, str]) -> install.Release:
    """The chart installed with the images built on the node: the operator runs as real
    pods (reaching the API through the `kubernetes` Service) and its build Jobs use the
    node's BuildKit image. One attempt per build, so a failing build is reported at once.
    The Gateway API kinds are served first, as on a cluster with a gateway."""
    gatewayplane.install_crds(real_cluster)
    return _install_chart(real_cluster, job_images["operator"],
                          f"build.buildkitImage={job_images['buildkit']}")  # fmt: skip


def _install_chart(
    cluster: testing.DevCluster, operator_image: str, *values: str
) -> install.Release:
    """The chart with the operator's image built on the node and these `--set` values,
    one attempt per build (a failing build shows at once); returns once the operator's
    pods are up."""
    repository, _, _ = operator_image.partition("@")
    sets = ["image.tag=dev", *values, "build.maxAttempts=1"]
    args = ["--set", f"image.repository={repository}"]
    for value in sets:
        args += ["--set", value]
    release = install.install(cluster, "pitstop", "pitstop-system", args=tuple(args))
    cluster.kubectl("rollout", "status", "deployment", "-n", release.namespace,
                    "--timeout=180s", "-l", "app.kubernetes.io/name=pitstop")  # fmt: skip
    return release


def test_the_operator_in_its_pod_rolls_out_the_built_image_and_it_predicts(
    real_cluster: testing.DevCluster, built: dict[str, Any], operator: install.Release
) -> None:
    """The operator in its pod rolls out a ModelDeployment of the built image; users
    reach the model through its entry Service."""
    release = operator
    namespace = _namespace(real_cluster, "restricted")
    model_deployment = {
        "apiVersion": "pitstop.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {"model": {"name": "fraud", "version": "7"}, "image": _pinned(built),
                 "serving": {"replicas": 1}},
    }  # fmt: skip
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(model_deployment))

    def phase() -> str | None:
        status = _get(real_cluster, "modeldeployments.pitstop.dev", "fraud", "-n", namespace)
        value = status.get("status", {}).get("phase")
        return value if value == "Healthy" else None

    try:
        real_cluster.wait("the ModelDeployment Healthy", phase, timeout=300, interval=1)
    except AssertionError as error:
        status = _get(real_cluster, "modeldeployments.pitstop.dev", "fraud", "-n", namespace)
        pods = real_cluster.kubectl("get", "pods", "-A", "-o", "wide").stdout
        events = real_cluster.kubectl("get", "events", "-n", namespace).stdout
        logs = real_cluster.kubectl("logs", "-n", release.namespace, "-l",
                                    "app.kubernetes.io/name=pitstop", "--tail=60").stdout  # fmt: skip
        raise AssertionError(
            f"{error}\nstatus: {json.dumps(status.get('status'), indent=1)}\n{pods}\n"
            f"{events}\noperator log:\n{logs}"
        ) from None
    entry = _get(real_cluster, "service", "fraud", "-n", namespace)["spec"]
    url = f"http://{entry['clusterIP']}:{entry['ports'][0]['port']}/predict"
    answer = real_cluster.wait(
        "a prediction through the entry Service",
        lambda: _post(url, {"f0": 1.0, "f1": 1.0, "f2": 0.0, "f3": 0.0}),
    )
    assert answer["predictions"] in ([1], ["1"]), answer
    logs = real_cluster.kubectl("logs", "-n", release.namespace, "-l",
                                "app.kubernetes.io/name=pitstop", "--tail=-1").stdout  # fmt: skip
    assert "forbidden" not in logs.lower()


ROW = {"f0": 1.0, "f1": 1.0, "f2": 0.0, "f3": 0.0}
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "60s"}]}}
ANALYSIS = {"interval": "5s", "failureLimit": 1, "minRequests": 20,
            "metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}]}  # fmt: skip


def _model_deployment(
    name: str, namespace: str, packages: str, version: str, *, cache: bool = False
) -> dict[str, Any]:
    """A ModelDeployment without spec.image: the operator builds it (with `cache`,
    through a layer cache in the node's registry)."""
    build: dict[str, Any] = {"registry": f"{nodeconfig.registry_host()}/models", "timeout": "25m"}
    if cache:
        build["cache"] = {"repository": f"{nodeconfig.registry_host()}/models/build-cache"}
    return {
        "apiVersion": "pitstop.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "fraud", "version": version,
                      "source": {"uri": f"{packages}/fraud-{version}.bentomodel"}},
            "build": build,
            "serving": {"replicas": 1},
            "strategy": CANARY,
            "analysis": ANALYSIS,
        },
    }  # fmt: skip


class _Load:
    """Users: one prediction at a time through the entry Service (kube-proxy), counted.

    Each request on a connection of its own: kube-proxy picks a backend per connection,
    so one kept-alive connection would reach one pod only and the canary none (seen
    here: the candidate's analysis had 0 requests)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(local_http.post(self.url, json=ROW, timeout=5).status_code)
            except httpx.HTTPError:
                self.answers.append(0)
            self._stop.wait(0.05)

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _status_of(cluster: testing.DevCluster, name: str, namespace: str) -> dict[str, Any]:
    found = _get(cluster, "modeldeployments.pitstop.dev", name, "-n", namespace)
    return found.get("status", {})  # type: ignore[no-any-return]


def _until(
    cluster: testing.DevCluster,
    release: install.Release,
    name: str,
    namespace: str,
    what: str,
    check: Any,
    timeout: float,
) -> dict[str, Any]:
    """Polls the status until `check(status)`; on timeout says what the cluster shows."""
    try:
        return cluster.wait(
            what, lambda: (s := _status_of(cluster, name, namespace)) and check(s) and s,
            timeout=timeout, interval=2,
        )  # fmt: skip
    except AssertionError as error:
        pods = cluster.kubectl("get", "pods", "-A", "-o", "wide").stdout
        logs = cluster.kubectl("logs", "-n", release.namespace, "-l",
                               "app.kubernetes.io/name=pitstop", "--tail=40").stdout  # fmt: skip
        status = json.dumps(_status_of(cluster, name, namespace), indent=1)
        raise AssertionError(f"{error}\nstatus: {status}\n{pods}\noperator log:\n{logs}") from None


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def _serving(status: dict[str, Any], version: str) -> bool:
    return status.get("phase") == "Healthy" and status.get("stable", {}).get("version") == version


def _jobs(cluster: testing.DevCluster, release: install.Release) -> set[str]:
    found = _get(cluster, "jobs", "-n", release.build_namespace)["items"]
    return {job["metadata"]["name"] for job in found}


def _entry_url(cluster: testing.DevCluster, name: str, namespace: str) -> str:
    entry = _get(cluster, "service", name, "-n", namespace)["spec"]
    return f"http://{entry['clusterIP']}:{entry['ports'][0]['port']}/predict"


def _layers(image: str) -> list[dict[str, Any]]:
    """The layers (digest, size) of `repository[:tag]@digest`, as the node's registry
    serves them."""
    reference, digest = image.split("@")
    repository, _, last = reference.split("/", 1)[1].rpartition("/")
    name = f"{repository}/{last.split(':')[0]}" if repository else last.split(":")[0]
    accept = ", ".join((
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ))  # fmt: skip
    base = f"http://{nodeconfig.registry_host()}/v2/{name}/manifests"
    manifest = local_http.get(f"{base}/{digest}", headers={"Accept": accept}, timeout=10).json()
    if "manifests" in manifest:  # an index: the image for this node's platform
        [chosen] = [m for m in manifest["manifests"]
                    if m.get("platform", {}).get("architecture") == "amd64"]  # fmt: skip
        manifest = local_http.get(f"{base}/{chosen['digest']}", headers={"Accept": accept},
                                  timeout=10).json()  # fmt: skip
    return [{"digest": layer["digest"], "size": layer["size"]} for layer in manifest["layers"]]


def _build_seconds(cluster: testing.DevCluster, release: install.Release) -> dict[str, float]:
    """How long each finished build Job ran, by model version."""
    seconds = {}
    for job in _get(cluster, "jobs", "-n", release.build_namespace)["items"]:
        status = job.get("status", {})
        if "completionTime" in status:
            ran = _timestamp(status["completionTime"]) - _timestamp(status["startTime"])
            seconds[job["metadata"]["labels"][labels.MODEL_VERSION]] = ran.total_seconds()
    return seconds


def _timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_operator_builds_each_version_and_canaries_it_to_promoted_under_analysis(
    real_cluster: testing.DevCluster, operator: install.Release, packages: str
) -> None:
    """No spec.image: the operator's own build Job builds each version with BuildKit on
    the node, pushes it, and the canary's analysis (the operator scraping the pods'
    /metrics) promotes version 8 while users' requests go through kube-proxy. Both builds
    go through a registry layer cache, and version 8 — the same model retrained, with
    the same libraries — reuses every layer of version 7's image but the bento's own."""
    namespace = _namespace(real_cluster, "restricted")
    md = _model_deployment("scorer", namespace, packages, "7", cache=True)
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    first = _until(real_cluster, operator, "scorer", namespace, "v7 built and Healthy",
                   lambda s: _serving(s, "7"), timeout=1200)  # fmt: skip
    assert _condition(first, "ImageBuilt").get("status") == "True"
    image = first["stable"]["image"]
    assert image.startswith(f"{nodeconfig.registry_host()}/models/")
    assert "@sha256:" in image
    [pod] = _get(real_cluster, "pods", "-n", namespace)["items"]
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(image.split("@")[1])

    with _Load(_entry_url(real_cluster, "scorer", namespace)) as load:
        real_cluster.wait("users answered by v7", lambda: load.answers.count(200) >= 20)
        md["spec"]["model"]["version"] = "8"
        md["spec"]["model"]["source"]["uri"] = f"{packages}/fraud-8.bentomodel"
        real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
        _until(real_cluster, operator, "scorer", namespace, "v8 canary in progress",
               lambda s: s.get("candidate", {}).get("version") == "8"
               and s.get("traffic", {}).get("candidate", 0) > 0, timeout=1200)  # fmt: skip
        done = _until(real_cluster, operator, "scorer", namespace, "v8 promoted",
                      lambda s: _serving(s, "8"), timeout=600)  # fmt: skip

    assert [(h["version"], h["outcome"]) for h in done["history"]][-1] == ("8", "Promoted")
    assert done["stable"]["image"] != image
    assert done["analysis"]["failures"] == 0
    assert [m["name"] for m in done["analysis"]["metrics"]] == ["error-rate"]
    # The bento's files are copied by the Dockerfile's last COPY, and one RUN follows
    # it: every layer before those (system and Python packages) comes from the cache.
    seven, eight = _layers(image), _layers(done["stable"]["image"])
    assert len(seven) == len(eight) > 2
    assert seven[:-2] == eight[:-2], "v8 rebuilt layers v7 had built"
    assert seven[-2] != eight[-2]  # the bento, with its model
    shared = sum(layer["size"] for layer in eight[:-2])
    print(
        f"v8 shares {len(eight) - 2} of {len(eight)} layers with v7 "
        f"({shared / 1e6:.0f} of {sum(layer['size'] for layer in eight) / 1e6:.0f} MB); "
        f"build Jobs ran (s): {_build_seconds(real_cluster, operator)}"
    )
    # Users saw no errors: stable and candidate answered through the same Service.
    assert load.answers.count(200) >= 40
    print("users' answers by status through the rollout:", dict(Counter(load.answers)))
    assert load.answers.count(200) / len(load.answers) > 0.99, sorted(set(load.answers))


def test_a_failing_build_shows_the_builders_log_while_the_stable_keeps_serving(
    real_cluster: testing.DevCluster, operator: install.Release, packages: str
) -> None:
    """fraud 7 for a second ModelDeployment: its build is on record, so it is not built
    again. Then fraud 9, whose requirements cannot be installed: ImageBuilt=False with
    the tail of the builder's log, and version 7 keeps answering."""
    namespace = _namespace(real_cluster, "restricted")
    first = _model_deployment("first", namespace, packages, "7")
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(first))
    _until(real_cluster, operator, "first", namespace, "v7 Healthy",
           lambda s: _serving(s, "7"), timeout=1200)  # fmt: skip
    jobs_before = _jobs(real_cluster, operator)
    md = _model_deployment("steady", namespace, packages, "7")
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    _until(real_cluster, operator, "steady", namespace, "a second v7 Healthy",
           lambda s: _serving(s, "7"), timeout=300)  # fmt: skip
    assert _jobs(real_cluster, operator) == jobs_before

    md["spec"]["model"]["version"] = "9"
    md["spec"]["model"]["source"]["uri"] = f"{packages}/fraud-9.bentomodel"
    with _Load(_entry_url(real_cluster, "steady", namespace)) as load:
        real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
        failed = _until(real_cluster, operator, "steady", namespace, "ImageBuilt=False/BuildFailed",
                        lambda s: _condition(s, "ImageBuilt").get("reason") == "BuildFailed",
                        timeout=1200)  # fmt: skip
        real_cluster.wait("users answered after the failure", lambda: load.answers.count(200) >= 20)
    message = _condition(failed, "ImageBuilt")["message"]
    # The builder's own words: the installer's error naming the requirement it could not
    # resolve, then BuildKit's summary of the step that failed.
    assert "scipy==0.0.0.dev0" in message, message
    assert "did not complete successfully" in message, message
    assert failed["stable"]["version"] == "7"
    assert set(load.answers) == {200}, (
        f"{load.answers.count(0)} of {len(load.answers)} requests unanswered",
        sorted(set(load.answers)),
    )


SHADOW = {"type": "Shadow", "shadow": {"percent": 100, "duration": "5m", "promote": "Auto"}}
AGREEMENT = {"name": "agreement", "builtin": "agreement", "min": 0.9}


def _metric(status: dict[str, Any], name: str) -> dict[str, Any]:
    metrics = (status.get("analysis") or {}).get("metrics") or []
    return next((m for m in metrics if m.get("name") == name), {})


def test_a_shadow_candidate_is_mirrored_through_cluster_dns_and_promoted_on_agreement(
    real_cluster: testing.DevCluster, operator: install.Release, packages: str
) -> None:
    """fraud 8 as a shadow of fraud 7: the stable's pods copy every user request to the
    candidate's revision Service by its cluster DNS name (the mirror ConfigMap's URL,
    resolved by CoreDNS, reached through kube-proxy), the candidate answers no user, and
    the operator promotes it on the agreement of the copies it really answered."""
    namespace = _namespace(real_cluster, "restricted")
    md = _model_deployment("mirrored", namespace, packages, "7")
    md["spec"]["strategy"] = SHADOW
    md["spec"]["analysis"] = {**ANALYSIS, "metrics": [*ANALYSIS["metrics"], AGREEMENT]}
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    first = _until(real_cluster, operator, "mirrored", namespace, "v7 Healthy",
                   lambda s: _serving(s, "7"), timeout=1200)  # fmt: skip
    stable_revision = first["stable"]["revision"]

    with _Load(_entry_url(real_cluster, "mirrored", namespace)) as load:
        real_cluster.wait("users answered by v7", lambda: load.answers.count(200) >= 20)
        md["spec"]["model"]["version"] = "8"
        md["spec"]["model"]["source"]["uri"] = f"{packages}/fraud-8.bentomodel"
        real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
        shadowing = _until(
            real_cluster, operator, "mirrored", namespace, "copies compared during the shadow",
            lambda s: s.get("candidate", {}).get("version") == "8"
            and (_metric(s, "agreement").get("requests") or 0) > 0, timeout=1200,
        )  # fmt: skip
        # Users still reach the stable revision only: the entry Service selects it.
        entry = _get(real_cluster, "service", "mirrored", "-n", namespace)["spec"]["selector"]
        assert stable_revision in entry.values(), entry
        mirror = _get(real_cluster, "configmap", "mirrored-mirror", "-n", namespace)
        url = json.loads(mirror["data"]["mirror.json"])["url"]
        assert url.startswith(
            f"http://mirrored-{shadowing['candidate']['revision']}.{namespace}.svc:"
        )
        done = _until(real_cluster, operator, "mirrored", namespace, "v8 promoted",
                      lambda s: _serving(s, "8"), timeout=900)  # fmt: skip

    assert [(h["version"], h["outcome"]) for h in done["history"]][-1] == ("8", "Promoted")
    agreement = _metric(done, "agreement")
    assert agreement["verdict"] == "Pass", agreement
    assert agreement["requests"] >= ANALYSIS["minRequests"], agreement
    assert agreement["value"] >= AGREEMENT["min"], agreement
    assert load.answers.count(200) / len(load.answers) > 0.99, sorted(set(load.answers))
    print(f"shadow: {agreement['requests']:.0f} copies compared through {url}, agreement "
          f"{agreement['value']:.3f} (interval {agreement.get('lower')}..{agreement.get('upper')}); "
          f"{load.answers.count(200)} of {len(load.answers)} user requests answered")  # fmt: skip


@pytest.fixture(scope="module")
def traefik(
    real_cluster: testing.DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gatewayplane.Traefik]:
    """Traefik, built from its Go module, as the node's Gateway API data plane."""
    folder = tmp_path_factory.mktemp("traefik")
    running = gatewayplane.start(real_cluster, folder, port=processes.free_port())
    try:
        yield running
    finally:
        gatewayplane.stop(running)


ROUTED_CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 30, "pause": "30m"}]}}


def test_traefik_splits_a_gateway_api_canary_as_the_httproute_pitstop_wrote_says(
    real_cluster: testing.DevCluster,
    operator: install.Release,
    packages: str,
    traefik: gatewayplane.Traefik,
) -> None:
    """Users reach the model through a Gateway of Traefik, a Gateway API implementation
    built from its Go module, on the HTTPRoute Pitstop creates. A shadow is refused
    before it starts (Traefik's GatewayClass does not list RequestMirror) and v7 keeps
    every request; as a canary at 30 %, the pods Traefik's access log names for each
    request split as the route's weights say, within sampling error."""
    namespace = _namespace(real_cluster, "restricted")
    gateway = gatewayplane.gateway("web", namespace, traefik.port)
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(gateway))
    real_cluster.wait(
        "Traefik programs the Gateway",
        lambda: _condition(_get(real_cluster, "gateway", "web", "-n", namespace).get("status", {}),
                           "Programmed").get("status") == "True", timeout=120, interval=1,
    )  # fmt: skip
    md = _model_deployment("routed", namespace, packages, "7")
    # No analysis: a passing verdict would end the 30-minute step while it is measured.
    del md["spec"]["analysis"]
    md["spec"]["traffic"] = {
        "provider": "gateway-api",
        "httpRoute": {"name": "routed", "parentRefs": [{"name": "web"}]},
    }
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    _until(real_cluster, operator, "routed", namespace, "v7 Healthy behind the Gateway",
           lambda s: _serving(s, "7"), timeout=1200)  # fmt: skip
    url = f"{traefik.url}/predict"
    real_cluster.wait("Traefik routes to v7", lambda: _post(url, ROW), timeout=60, interval=1)

    # A shadow needs the gateway to mirror, and Traefik says it cannot.
    md["spec"]["model"]["version"] = "8"
    md["spec"]["model"]["source"]["uri"] = f"{packages}/fraud-8.bentomodel"
    md["spec"]["strategy"] = SHADOW
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    held = _until(real_cluster, operator, "routed", namespace, "the shadow held",
                  lambda s: _condition(s, "Progressing").get("reason") == "TrafficUnavailable",
                  timeout=300)  # fmt: skip
    message = _condition(held, "Progressing")["message"]
    assert "GatewayClass traefik" in message, message
    assert "HTTPRouteRequestMirror" in message, message
    assert "candidate" not in held
    assert held["stable"]["version"] == "7"
    assert [_post(url, ROW) is not None for _ in range(20)] == [True] * 20

    md["spec"]["strategy"] = ROUTED_CANARY
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    split = _until(real_cluster, operator, "routed", namespace, "the v8 canary at 30 %",
                   lambda s: s.get("candidate", {}).get("version") == "8"
                   and s.get("traffic", {}).get("candidate") == 30, timeout=1200)  # fmt: skip
    candidate = split["candidate"]["revision"]
    route = _get(real_cluster, "httproute", "routed", "-n", namespace)
    weights = {
        ref["name"]: ref.get("weight", 1) for ref in route["spec"]["rules"][0]["backendRefs"]
    }
    expected = weights[f"routed-{candidate}"] / sum(weights.values())
    pods = _get(real_cluster, "pods", "-n", namespace)["items"]
    revision_of = {p["status"]["podIP"]: p["metadata"]["labels"][labels.REVISION]
                   for p in pods if p["status"].get("podIP")}  # fmt: skip

    before = len(traefik.requests())
    answers = [local_http.post(url, json=ROW, timeout=5).status_code for _ in range(600)]
    logged = real_cluster.wait(
        "Traefik logged every request",
        lambda: found if len(found := traefik.requests()[before:]) >= 600 else None,
    )
    assert set(answers) == {200}, Counter(answers)
    # The route Traefik followed is the one measured against: it did not move meanwhile.
    assert _get(real_cluster, "httproute", "routed", "-n", namespace)["spec"] == route["spec"]
    by_revision = Counter(revision_of[entry["ServiceAddr"].rsplit(":", 1)[0]] for entry in logged)
    share = by_revision[candidate] / len(logged)
    bound = 3 * (expected * (1 - expected) / len(logged)) ** 0.5
    print(f"Traefik sent {by_revision[candidate]} of {len(logged)} requests to the candidate "
          f"({share:.3f}); the HTTPRoute's weights {weights} say {expected:.3f} ± {bound:.3f}")  # fmt: skip
    assert set(by_revision) == {split["stable"]["revision"], candidate}, by_revision
    assert abs(share - expected) <= bound, (share, expected, weights)


def _ready_pod(cluster: testing.DevCluster, namespace: str) -> dict[str, Any] | None:
    for candidate in _get(cluster, "pods", "-n", namespace)["items"]:
        conditions = candidate.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return candidate  # type: ignore[no-any-return]
    return None


def _post(url: str, row: dict[str, float]) -> dict[str, Any] | None:
    try:
        response = local_http.post(url, json=row, timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def _status(url: str) -> int | None:
    try:
        return local_http.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None
