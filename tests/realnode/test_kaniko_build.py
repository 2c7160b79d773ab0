"""kaniko, the other builder, run for real: the chart's operator builds a model with a
kaniko Job in a build namespace that enforces only `baseline`, and the model runs.

The kaniko image is the node's own (`buildimages.kaniko_image`: the executor built from
the kaniko module on the Go module proxy, laid out as upstream's image), as the BuildKit
image is in `test_build_job`. The chart is installed with kaniko as its only builder, so
it creates the build namespace at `baseline`, the least level kaniko's pods (uid 0, no
privilege) need; the ModelDeployment's own namespace enforces `restricted`.

What kaniko records is checked against the registry: the termination message of the
build step (`--digest-file`) must be the manifest digest the registry serves for the
pushed tag (`crane digest`), since the model pod is pulled by it.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

# The BuildKit test's package server and status helpers, shared rather than copied: this
# folder has no __init__.py, so pytest puts it on sys.path and its modules import as such.
import test_build_job as shared
from pitstop.devcluster import buildimages, install, nodeconfig, testing
from pitstop.rendering import build_job

pytestmark = [pytest.mark.realnode, pytest.mark.timeout(1800)]

packages = shared.packages
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kaniko_release(real_cluster: testing.DevCluster) -> install.Release:
    """The chart with images built on the node, kaniko its only builder: the build
    namespace it creates enforces `baseline`. One attempt, so a failure shows at once."""
    operator_image = buildimages.operator_image(real_cluster.bin_dir, REPOSITORY_ROOT, print)
    started = time.monotonic()
    kaniko_image = buildimages.kaniko_image(real_cluster.bin_dir, print)
    print(f"kaniko image {kaniko_image} in {time.monotonic() - started:.0f}s")
    return shared._install_chart(real_cluster, operator_image, "build.builders={kaniko}",
                                 f"build.kanikoImage={kaniko_image}")  # fmt: skip


def test_the_operator_builds_with_kaniko_in_a_baseline_namespace_and_the_model_runs(
    real_cluster: testing.DevCluster, kaniko_release: install.Release, packages: str
) -> None:
    release = kaniko_release
    builds = shared._get(real_cluster, "namespace", release.build_namespace)
    assert builds["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    namespace = f"rn-{uuid.uuid4().hex[:8]}"
    real_cluster.create_namespace(namespace, pod_security="restricted")
    md = shared._model_deployment("kaniko", namespace, packages, "7")
    md["spec"]["build"]["builder"] = "kaniko"
    started = time.monotonic()
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    status = shared._until(real_cluster, release, "kaniko", namespace, "v7 built by kaniko and Healthy",
                           lambda s: shared._serving(s, "7"), timeout=1500)  # fmt: skip
    print(f"built by kaniko and Healthy in {time.monotonic() - started:.0f}s")
    assert shared._condition(status, "ImageBuilt").get("status") == "True"

    [job] = shared._get(real_cluster, "jobs", "-n", release.build_namespace)["items"]
    [build_pod] = shared._get(real_cluster, "pods", "-n", release.build_namespace, "-l",
                              f"job-name={job['metadata']['name']}")["items"]  # fmt: skip
    assert build_pod["spec"]["containers"][0]["image"] == _kaniko_image(release, real_cluster)
    [build] = build_pod["status"]["containerStatuses"]
    recorded = build["state"]["terminated"]["message"].strip()
    tag = job["metadata"]["annotations"][build_job.IMAGE_ANNOTATION]
    served = _crane(real_cluster, "digest", "--insecure", tag)
    # What kaniko recorded is the manifest digest the registry serves for the tag it
    # pushed, and the digest the ModelDeployment runs.
    assert recorded == served, (recorded, served)
    image = status["stable"]["image"]
    assert image == f"{tag}@{served}"
    assert image.startswith(f"{nodeconfig.registry_host()}/models/")
    [pod] = shared._get(real_cluster, "pods", "-n", namespace)["items"]
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(served)
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    print(f"kaniko pushed {tag}: recorded {recorded}, registry serves {served}")

    answer = real_cluster.wait(
        "a prediction through the entry Service",
        lambda: shared._post(shared._entry_url(real_cluster, "kaniko", namespace), shared.ROW),
    )
    assert answer["predictions"] in ([1], ["1"]), answer


def _kaniko_image(release: install.Release, cluster: testing.DevCluster) -> str:
    deployment = shared._get(cluster, "deployment", "-n", release.namespace, "-l",
                             "app.kubernetes.io/name=pitstop")["items"][0]  # fmt: skip
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    return str(env["PITSTOP_KANIKO_IMAGE"])


def _crane(cluster: testing.DevCluster, *args: str) -> str:
    crane = str(cluster.bin_dir / "crane")
    return subprocess.run([crane, *args], check=True, capture_output=True, text=True).stdout.strip()
