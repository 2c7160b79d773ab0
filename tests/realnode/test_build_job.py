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

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import buildimages, install, nodeconfig, testing
from pitstop.rendering import build_job, children
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
def package_url(
    real_cluster: testing.DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A model package made with `pitstop package create`, served over HTTP on the
    node's bridge, where the build pod can fetch it."""
    folder = tmp_path_factory.mktemp("package")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=[f"f{i}" for i in range(4)])
    frame["y"] = (frame["f0"] + frame["f1"] > 0).astype(int)
    model = LogisticRegression().fit(frame.drop(columns="y"), frame["y"])
    joblib.dump(model, folder / "model.joblib")
    frame.to_parquet(folder / "train.parquet")
    exported = folder / "out"
    exported.mkdir()
    subprocess.run(
        [str(Path(sys.executable).with_name("pitstop")), "package", "create",
         str(folder / "model.joblib"), "--data", str(folder / "train.parquet"),
         "--name", "fraud", "--version", "7", "--target", "y", "--export", str(exported)],
        env={**os.environ, "BENTOML_HOME": str(folder / "home"), "BENTOML_DO_NOT_TRACK": "true"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(exported))
    server = http.server.ThreadingHTTPServer((nodeconfig.gateway(), 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{nodeconfig.gateway()}:{server.server_address[1]}/fraud-7.bentomodel"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


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


def test_the_operator_in_its_pod_rolls_out_the_built_image_and_it_predicts(
    real_cluster: testing.DevCluster, built: dict[str, Any], job_images: dict[str, str]
) -> None:
    """The chart installed with the operator image built on the node: the operator runs
    as a real pod (reaching the API through the `kubernetes` Service), and rolls out a
    ModelDeployment of the built image; users reach the model through its entry Service."""
    repository, _, _ = job_images["operator"].partition("@")
    release = install.install(
        real_cluster, "pitstop", "pitstop-system",
        args=("--set", f"image.repository={repository}", "--set", "image.tag=dev",
              "--set", f"build.buildkitImage={job_images['buildkit']}"),
    )  # fmt: skip
    real_cluster.kubectl("rollout", "status", "deployment", "-n", release.namespace,
                         "--timeout=180s", "-l", "app.kubernetes.io/name=pitstop")  # fmt: skip
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


def _ready_pod(cluster: testing.DevCluster, namespace: str) -> dict[str, Any] | None:
    for candidate in _get(cluster, "pods", "-n", namespace)["items"]:
        conditions = candidate.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return candidate  # type: ignore[no-any-return]
    return None


def _post(url: str, row: dict[str, float]) -> dict[str, Any] | None:
    try:
        response = httpx.post(url, json=row, timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None
