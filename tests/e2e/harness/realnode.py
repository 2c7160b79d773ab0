"""The e2e scenarios on a real node (`PITSTOP_E2E_NODE=real`, root): what the kubelet
emulator stood in for is the real thing.

Each scenario model's build context (`harness.models`) is built by the node's BuildKit
from the Dockerfile Pitstop generates and pushed to the node's registry; ModelDeployments
name those images by digest, and the real kubelet runs them (readiness probes, volumes,
Pod Security `restricted`), with CoreDNS and kube-proxy for the mirror's copies. The
scenario models share every layer but their bento's (see `pitstop.packaging.bento`), so
after the first build each further one takes about a second.

`Pods` answers what tests asked the emulator: the model servers behind the namespace's
ready pods, by label. Pod IPs sit on the node's bridge, which the host routes to.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from kubernetes import client as k8s_client
from pitstop.devcluster import buildimages, nodeconfig, testing

from harness import kubelet, models

Log = Callable[[str], None]


def node() -> str:
    """Where the scenarios run: `kwok` (the default) or `real` (PITSTOP_E2E_NODE)."""
    chosen = os.environ.get("PITSTOP_E2E_NODE", "kwok")
    if chosen not in ("kwok", "real"):
        raise ValueError(f"PITSTOP_E2E_NODE={chosen!r}: kwok (the default) or real")
    return chosen


def build_images(bin_dir: Path, contexts: Mapping[str, str], log: Log) -> dict[str, str]:
    """Build and push every scenario model; version -> `repository@sha256:…`."""
    started = time.monotonic()
    repository = f"{nodeconfig.registry_host()}/e2e/{models.NAME}"
    images = {
        version: buildimages.build(
            bin_dir, Path(folder), Path(folder) / "env" / "docker", f"{repository}:{version}", log
        )
        for version, folder in contexts.items()
    }
    log(f"{len(images)} scenario images built in {time.monotonic() - started:.0f}s")
    return images


@dataclasses.dataclass(frozen=True)
class Server:
    """A model server the real kubelet runs: its pod's name and address."""

    name: str
    url: str


class Pods:
    """The namespace's model servers as the real kubelet runs them."""

    def __init__(self, cluster: testing.DevCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.problems: list[str] = []  # nothing emulated, so nothing to report

    def servers(self, labels: Mapping[str, str] | None = None) -> list[Server]:
        """Servers of the ready pods carrying `labels` (one API client per call: tests
        ask rarely, and nothing is left open after the test)."""
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items())
        with self.cluster.api_client() as api:
            answer = k8s_client.CoreV1Api(api).list_namespaced_pod(
                self.namespace, label_selector=selector, _preload_content=False,
                _request_timeout=10,
            )  # fmt: skip
            pods = json.loads(answer.data)["items"]
        return [
            Server(
                pod["metadata"]["name"],
                f"http://{pod['status']['podIP']}:"
                f"{pod['spec']['containers'][0]['ports'][0]['containerPort']}",
            )
            for pod in pods
            if kubelet.is_ready(pod)
        ]
