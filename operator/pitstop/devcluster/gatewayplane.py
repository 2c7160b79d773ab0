"""Traefik as the real node's Gateway API data plane (`traefikbuild` builds it).

It runs on the host beside the node's other daemons and listens on 127.0.0.1 only. It
watches the Gateway API objects as a ServiceAccount of its own (the RBAC below: what
Traefik's Gateway provider reads and the statuses it writes), and it sends each request
straight to a Ready pod's IP over the node's bridge, choosing the backend Service by the
HTTPRoute's weights. Its access log (JSON, one line per request) names the pod each
request went to: that is where a test measures the split a route really makes.

The Gateway API CRDs it serves are the project's own, read from the Go module
`sigs.k8s.io/gateway-api` (never copied into the repository), as the integration tests
read them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from pitstop.devcluster import binaries, processes, testing

# The newest the proxy serves for Go 1.26. Traefik v3.7.13 (built against v1.6.1) waits
# for TLSRoute, standard since v1.5; RequestMirror `percent` is standard since v1.4.
GATEWAY_API = ("sigs.k8s.io/gateway-api", "v1.6.3")
CONTROLLER_NAME = "traefik.io/gateway-controller"
GATEWAY_CLASS = "traefik"
NAMESPACE = "pitstop-gateway"
SERVICE_ACCOUNT = "traefik"
TOKEN_DURATION = "12h"

Object = dict[str, Any]


def crd_manifests() -> list[Path]:
    """Gateway API's standard-channel CRD files, from Go's module cache."""
    folder = Path(binaries.download(*GATEWAY_API)["Dir"]) / "config" / "crd" / "standard"
    return sorted(folder.glob("*.yaml"))


def install_crds(cluster: testing.DevCluster) -> None:
    """Serve the Gateway API kinds (idempotent)."""
    for path in crd_manifests():
        cluster.kubectl("apply", "--server-side", "--field-manager=gateway-api", "-f", str(path))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/httproutes.gateway.networking.k8s.io", "crd/gateways.gateway.networking.k8s.io",
    )  # fmt: skip


def objects() -> list[Object]:
    """Traefik's namespace, ServiceAccount, its cluster-wide read access and the status
    it writes, and the GatewayClass that names it as the controller."""
    gateway_kinds = [
        "gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants",
        "backendtlspolicies", "tcproutes", "tlsroutes",
    ]  # fmt: skip
    rules = [
        {"apiGroups": [""], "resources": ["namespaces", "services", "secrets", "configmaps"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": gateway_kinds,
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["gateway.networking.k8s.io"],
         "resources": [f"{kind}/status" for kind in gateway_kinds],
         "verbs": ["update", "patch"]},
    ]  # fmt: skip
    name = "pitstop-dev-traefik"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                       "namespace": NAMESPACE}]},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": GATEWAY_CLASS}, "spec": {"controllerName": CONTROLLER_NAME}},
    ]  # fmt: skip


def gateway(name: str, namespace: str, port: int) -> Object:
    """A Gateway of Traefik's class with one HTTP listener on `port` (Traefik serves a
    listener on the entry point of the same port), for routes of its own namespace."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": port,
                           "allowedRoutes": {"namespaces": {"from": "Same"}}}],
        },
    }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Traefik:
    """A running Traefik: where it listens and where it logs each request."""

    running: processes.Running
    port: int
    access_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[Object]:
        """Every request logged so far, as Traefik wrote it (`ServiceAddr` is the pod's
        IP and port, `RouterName` the route rule, `DownstreamStatus` the answer)."""
        if not self.access_log.exists():
            return []
        lines = self.access_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def arguments(*, server: str, token: Path, ca: Path, port: int, access_log: Path) -> list[str]:
    """Traefik's command line: the Gateway provider only, one entry point, JSON access
    log, no anonymous usage statistics or version check (the machine reaches no one)."""
    return [
        f"--entryPoints.web.address=127.0.0.1:{port}",
        "--providers.kubernetesGateway=true",
        f"--providers.kubernetesGateway.endpoint={server}",
        f"--providers.kubernetesGateway.token={token}",
        f"--providers.kubernetesGateway.certAuthFilePath={ca}",
        "--providers.kubernetesGateway.statusAddress.ip=127.0.0.1",
        "--accessLog=true",
        f"--accessLog.filePath={access_log}",
        "--accessLog.format=json",
        "--accessLog.bufferingSize=0",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]


def start(cluster: testing.DevCluster, folder: Path, *, port: int) -> Traefik:
    """Install Traefik's objects and start it; `stop` ends it. Returns at once: wait for
    a Gateway's `Programmed` condition before sending to it."""
    install_crds(cluster)
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                          "items": objects()}))  # fmt: skip
    token = folder / "traefik.token"
    token.write_text(
        cluster.kubectl(
            "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, f"--duration={TOKEN_DURATION}"
        ).stdout.strip()
    )
    token.chmod(0o600)
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    ca = Path(kubeconfig["clusters"][0]["cluster"]["certificate-authority"])
    access_log = folder / "traefik-access.log"
    executable = cluster.bin_dir / "traefik"
    if not executable.is_file():
        raise FileNotFoundError(f"{executable}: build the node's binaries (make node-binaries)")
    args = arguments(server=cluster.server, token=token, ca=ca, port=port, access_log=access_log)
    running = processes.start("traefik", executable, args, log_dir=folder)
    return Traefik(running, port, access_log)


def stop(traefik: Traefik) -> None:
    processes.stop(traefik.running)
