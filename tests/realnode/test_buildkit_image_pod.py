"""An image built by BuildKit on the node runs as a real pod, the way a model's will.

One story, in the order a serving image lives it: BuildKit builds a small Dockerfile
`FROM` the node's own base image and pushes it to the node's registry; the manifest
digest BuildKit reports is the registry's; a Deployment in a namespace that enforces the
`restricted` Pod Security level runs it pulled by that digest; the kubelet's real
readiness probe gates it (a pod whose probe fails never becomes Ready and never gets
traffic); the process runs as non-root on a read-only root filesystem; and it answers
through its ClusterIP Service, by its cluster DNS name, from another pod and from the
host.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import local_http
import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import nodeconfig, realnode, testing
from pitstop.rendering import build_job

pytestmark = pytest.mark.realnode

UID = 10001
PORT = 8080

# The server reports what the test must verify from inside the container: who it runs
# as and whether its root filesystem is writable.
SERVER = textwrap.dedent(
    """\
    import http.server, json, os, socket

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz":
                return self._send(200, {"ok": True})
            if self.path == "/whoami":
                try:
                    open("/written-by-the-pod", "w").close()
                    writable = True
                except OSError:
                    writable = False
                return self._send(200, {"uid": os.getuid(), "gid": os.getgid(),
                                        "root_writable": writable,
                                        "hostname": socket.gethostname()})
            self._send(503, {"ready": False})

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
    """
)


@pytest.fixture(scope="module")
def built_image(
    real_cluster: testing.DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The test image, built by the node's buildkitd and pushed to its registry."""
    context = tmp_path_factory.mktemp("context")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text(
        f"FROM {nodeconfig.base_image()}\n"
        "COPY server.py /app/server.py\n"
        # A RUN step: the build really runs a container on the node (runc worker).
        "RUN python3 -m py_compile /app/server.py\n"
        f"USER {UID}:{UID}\n"
        f"EXPOSE {PORT}\n"
        'CMD ["python3", "/app/server.py"]\n'
    )
    name = f"{nodeconfig.registry_host()}/tests/hello:{uuid.uuid4().hex[:8]}"
    metadata = context / "metadata.json"
    bin_dir = real_cluster.bin_dir
    subprocess.run(
        [
            str(bin_dir / "buildctl"), f"--addr={nodeconfig.buildkit_address()}", "build",
            "--frontend=dockerfile.v0", f"--local=context={context}",
            f"--local=dockerfile={context}",
            f"--output=type=image,name={name},push=true",
            f"--metadata-file={metadata}",
        ],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    meta: dict[str, Any] = json.loads(metadata.read_text())
    registry_digest = subprocess.run(
        [str(bin_dir / "crane"), "digest", "--insecure", name],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return {
        "name": name,
        "manifest_digest": meta["containerimage.digest"],
        "config_digest": meta["containerimage.config.digest"],
        "registry_digest": registry_digest,
        "repository": name.rsplit(":", 1)[0],
        "metadata_file": str(metadata),
    }


@pytest.fixture
def namespace(real_cluster: testing.DevCluster) -> Iterator[str]:
    name = f"rn-{uuid.uuid4().hex[:8]}"
    real_cluster.create_namespace(name, pod_security="restricted")
    try:
        yield name
    finally:
        real_cluster.kubectl("delete", "namespace", name, "--wait=false")


def _restricted_container(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "main",
        "image": image,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **extra,
    }


def _deployment(name: str, image: str, probe_path: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": probe_path, "port": PORT}, "periodSeconds": 1,
             "failureThreshold": 1}  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        _restricted_container(
                            image, ports=[{"containerPort": PORT}], readinessProbe=probe
                        )
                    ],
                },
            },
        },
    }


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": PORT}]},
    }


def _apply(cluster: testing.DevCluster, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def _pod(cluster: testing.DevCluster, namespace: str, app: str) -> dict[str, Any] | None:
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}",
                                      "-o", "json").stdout)["items"]  # fmt: skip
    return pods[0] if pods else None


def _ready(pod: dict[str, Any] | None) -> bool:
    conditions = (pod or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_buildkit_reports_the_manifest_digest_that_the_registry_serves(
    built_image: dict[str, str],
) -> None:
    assert built_image["manifest_digest"] == built_image["registry_digest"]
    # The metadata file holds the config digest too: a digest taken from it must be
    # read by key (`containerimage.digest`), not as "the first sha256 in the file".
    assert built_image["config_digest"] != built_image["manifest_digest"]


def test_the_build_jobs_recorded_digest_is_the_manifest_digest(
    built_image: dict[str, str], tmp_path: Path
) -> None:
    md = ModelDeployment.model_validate(
        {
            "metadata": {"name": "m", "namespace": "ml", "uid": "u-1"},
            "spec": {
                "model": {"name": "m", "version": "1", "source": {"uri": "https://h/m"}},
                "build": {"registry": nodeconfig.registry_host() + "/tests"},
            },
        }
    )
    job = build_job.job(md, "k", 1, build_job.BuildSettings(operator_image="pitstop/operator"))
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    # The part of the build script after BuildKit ran: what it writes as the digest.
    recording = script[script.index(" && ") + len(" && ") :]
    termination_log = tmp_path / "termination-log"
    recording = recording.replace(build_job.BUILDKIT_METADATA, built_image["metadata_file"])
    recording = recording.replace("/dev/termination-log", str(termination_log))

    subprocess.run(["sh", "-c", recording], check=True)

    assert termination_log.read_text().strip() == built_image["manifest_digest"]


def test_pod_of_the_built_image_runs_restricted_behind_its_probe_and_answers_by_dns(
    real_cluster: testing.DevCluster, built_image: dict[str, str], namespace: str
) -> None:
    image = f"{built_image['repository']}@{built_image['manifest_digest']}"
    _apply(real_cluster, namespace,
           _deployment("hello", image, "/healthz"), _service("hello"),
           # Same image, a probe that always fails: Running but never Ready.
           _deployment("unready", image, "/never-ready"), _service("unready"))  # fmt: skip

    pod = real_cluster.wait("the hello pod Ready", lambda: (p := _pod(real_cluster, namespace, "hello")) and _ready(p) and p, timeout=180)  # fmt: skip
    status = pod["status"]["containerStatuses"][0]
    assert status["imageID"].endswith(built_image["manifest_digest"])
    assert pod["status"]["podIP"].startswith("10.244.0.")

    # The kubelet probes for real: the failing probe is reported and keeps it unready.
    real_cluster.wait(
        "a failed readiness probe of the unready pod",
        lambda: "Readiness probe failed: HTTP probe failed with statuscode: 503"
        in real_cluster.kubectl("get", "events", "-n", namespace,
                                "--field-selector", "reason=Unhealthy", "-o", "json").stdout,
        timeout=120,
    )  # fmt: skip
    unready = _pod(real_cluster, namespace, "unready")
    assert unready is not None
    assert unready["status"]["phase"] == "Running"
    assert not _ready(unready)

    # From the host: the name through cluster DNS (kube-proxy to CoreDNS), then the
    # Service's ClusterIP (kube-proxy to the pod).
    service_ip = json.loads(
        real_cluster.kubectl("get", "service", "hello", "-n", namespace, "-o", "json").stdout
    )["spec"]["clusterIP"]
    fqdn = f"hello.{namespace}.svc.cluster.local"
    assert real_cluster.wait(
        "the Service's name in cluster DNS",
        lambda: realnode.dns_query(nodeconfig.dns_service_ip(), fqdn) == service_ip,
    )
    whoami = real_cluster.wait(
        "an answer through the ClusterIP",
        lambda: _get_json(f"http://{service_ip}/whoami"),
    )
    assert whoami["uid"] == UID
    assert whoami["gid"] == UID
    assert whoami["root_writable"] is False
    assert whoami["hostname"] == pod["metadata"]["name"]
    # The unready pod's Service has no ready endpoint: nothing answers there.
    unready_ip = json.loads(
        real_cluster.kubectl("get", "service", "unready", "-n", namespace, "-o", "json").stdout
    )["spec"]["clusterIP"]
    with pytest.raises(httpx.HTTPError):
        local_http.get(f"http://{unready_ip}/whoami", timeout=2)

    # From another pod, by the short name its resolv.conf search path completes.
    client = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                _restricted_container(
                    image,
                    command=[
                        "python3",
                        "-c",
                        "import urllib.request;"
                        "print(urllib.request.urlopen('http://hello/whoami', timeout=10)"
                        ".read().decode())",
                    ],
                )
            ],
        },
    }
    _apply(real_cluster, namespace, client)
    real_cluster.wait(
        "the client pod to finish",
        lambda: json.loads(real_cluster.kubectl("get", "pod", "client", "-n", namespace,
                                                "-o", "json").stdout)["status"]["phase"]
        in ("Succeeded", "Failed"),
        timeout=120,
    )  # fmt: skip
    logs = real_cluster.kubectl("logs", "client", "-n", namespace).stdout
    assert json.loads(logs)["hostname"] == pod["metadata"]["name"]
    phase = json.loads(
        real_cluster.kubectl("get", "pod", "client", "-n", namespace, "-o", "json").stdout
    )["status"]["phase"]
    assert phase == "Succeeded"


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        response = local_http.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]
