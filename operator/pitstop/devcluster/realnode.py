"""A real node beside the local control plane: containerd, kubelet, kube-proxy, CNI,
CoreDNS, a registry and BuildKit, started in that order, and taken down again.

`cluster` calls `prepare_host` before the API server starts (the API server binds the
bridge's address, which must exist by then), `apiserver_flags` and
`controller_manager_flags` to adapt the control plane, and `start` once the controllers
run. `stop_host` runs after every process is stopped. What each component is configured
with is `nodeconfig`'s; what the host gets and gives back is `hostnet`'s; the images are
`nodeimages`'. This module owns the order and the conditions: the registry answers
before images are pushed, the images are there before the kubelet creates a sandbox,
the node is Ready, and cluster DNS answers through kube-proxy before `up` returns.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pitstop.devcluster import certs, hostnet, kubeconfig, nodeconfig, nodeimages

Log = Callable[[str], None]
Launch = Callable[[str, list[str], "dict[str, str] | None"], None]


class NodeError(RuntimeError):
    """The real node did not come up; the message names what and where to look."""


def layout(state_dir: Path, bin_dir: Path, ports: dict[str, int]) -> nodeconfig.NodeLayout:
    return nodeconfig.NodeLayout(
        state_dir=state_dir, bin_dir=bin_dir, pki_dir=state_dir / "pki", ports=ports
    )


def prepare_host(state_dir: Path, log: Log) -> None:
    hostnet.prepare(state_dir / "node", log)


def stop_host(state_dir: Path, bin_dir: Path, log: Log) -> None:
    hostnet.restore(state_dir / "node", bin_dir, log)


def _override(args: list[str], flags: dict[str, str]) -> list[str]:
    """`args` with each `--name=` in `flags` replaced (or added)."""
    kept = [a for a in args if a.split("=", 1)[0].removeprefix("--") not in flags]
    return kept + [f"--{name}={value}" for name, value in flags.items()]


def apiserver_flags(args: list[str], pki_dir: Path) -> list[str]:
    gateway = nodeconfig.gateway()
    return _override(
        args,
        {
            # Pods reach the API server through the `kubernetes` Service, whose endpoint
            # is the advertised address: the bridge's, where it also listens.
            "bind-address": gateway,
            "advertise-address": gateway,
            "endpoint-reconciler-type": "lease",
            "service-cluster-ip-range": nodeconfig.SERVICE_CIDR,
            # Node names do not resolve on this host; the kubelet serves on its IP.
            "kubelet-preferred-address-types": "InternalIP",
            "kubelet-certificate-authority": str(pki_dir / "ca.crt"),
            "kubelet-client-certificate": str(pki_dir / "apiserver-kubelet-client.crt"),
            "kubelet-client-key": str(pki_dir / "apiserver-kubelet-client.key"),
        },
    )


def controller_manager_flags(args: list[str]) -> list[str]:
    return _override(
        args,
        {
            "service-cluster-ip-range": nodeconfig.SERVICE_CIDR,
            "allocate-node-cidrs": "true",
            "cluster-cidr": nodeconfig.CLUSTER_CIDR,
            "node-cidr-mask-size": "24",
        },
    )


def issue_certs(pki_dir: Path) -> None:
    """The node's identities, signed by the cluster's CA (before the API server starts:
    it reads its client certificate for kubelets at start)."""
    gateway = nodeconfig.gateway()
    certs.issue(
        pki_dir,
        "apiserver-kubelet-client",
        common_name="kube-apiserver-kubelet-client",
        organization="system:masters",
        client=True,
    )
    certs.issue(pki_dir, "kubelet", common_name=nodeconfig.NODE_NAME, server_ips=(gateway,))
    # The Node authorizer recognises exactly this name and group.
    certs.issue(
        pki_dir,
        "kubelet-client",
        common_name=f"system:node:{nodeconfig.NODE_NAME}",
        organization="system:nodes",
        client=True,
    )
    # Bound to the system:node-proxier ClusterRole by the bootstrap policy.
    certs.issue(pki_dir, "kube-proxy", common_name="system:kube-proxy", client=True)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _wait(
    what: str, check: Callable[[], bool], *, deadline: float, fail: Callable[[], None]
) -> None:
    while True:
        fail()
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError, KeyError):
            if check():
                return
        if time.monotonic() > deadline:
            raise NodeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def start(
    *,
    node: nodeconfig.NodeLayout,
    server: str,
    admin_kubeconfig: Path,
    client: httpx.Client,
    launch: Launch,
    fail: Callable[[], None],
    deadline: float,
    log: Log,
) -> dict[str, str]:
    """Start the node's processes; return the digests of the images it pushed."""
    t0 = time.monotonic()
    pki = node.pki_dir
    d = node.node_dir

    def node_kubeconfig(name: str, user: str) -> Path:
        return kubeconfig.write(
            pki / f"{name}.kubeconfig",
            server=server,
            ca=pki / "ca.crt",
            cert=pki / f"{name}.crt",
            key=pki / f"{name}.key",
            user=user,
        )

    containerd_config = _write(d / "containerd" / "config.toml", nodeconfig.containerd_config(node))
    _write(
        d / "containerd" / "certs.d" / nodeconfig.registry_host() / "hosts.toml",
        nodeconfig.registry_hosts_toml(),
    )
    _write(node.cni_conf_dir / "10-pitstop.conflist", nodeconfig.cni_conflist(node))
    # The shim is found on PATH; runc is named in the config.
    path_env = {**os.environ, "PATH": f"{node.bin_dir}:{os.environ.get('PATH', '')}"}
    launch("containerd", ["--config", str(containerd_config)], path_env)
    registry_config = _write(d / "registry.yml", nodeconfig.registry_config(node))
    launch("registry", ["serve", str(registry_config)], None)
    _wait(
        "the registry",
        lambda: httpx.get(f"http://{nodeconfig.registry_host()}/v2/", timeout=2).status_code == 200,
        deadline=deadline,
        fail=fail,
    )
    digests = nodeimages.push(node.bin_dir, log)
    _wait("containerd's socket", node.containerd_socket.exists, deadline=deadline, fail=fail)
    log(f"containerd and registry ready after {time.monotonic() - t0:.1f}s")

    buildkitd_config = _write(d / "buildkit" / "buildkitd.toml", nodeconfig.buildkitd_config(node))
    launch("buildkitd", nodeconfig.buildkitd(buildkitd_config), path_env)
    kubelet_config = _write(d / "kubelet.json", nodeconfig.kubelet_config(node))
    launch(
        "kubelet",
        nodeconfig.kubelet(node, node_kubeconfig("kubelet-client", "kubelet"), kubelet_config),
        path_env,
    )
    proxy_config = _write(
        d / "kube-proxy.json",
        nodeconfig.kube_proxy_config(node, node_kubeconfig("kube-proxy", "kube-proxy")),
    )
    launch("kube-proxy", nodeconfig.kube_proxy(proxy_config), None)
    corefile = _write(d / "Corefile", nodeconfig.corefile(node, admin_kubeconfig))
    launch("coredns", nodeconfig.coredns(corefile), None)

    _create_dns_service(client)
    _wait("node Ready", lambda: _node_ready(client), deadline=deadline, fail=fail)
    log(f"node {nodeconfig.NODE_NAME} Ready after {time.monotonic() - t0:.1f}s")
    _wait(
        "cluster DNS through kube-proxy",
        lambda: (
            dns_query(nodeconfig.dns_service_ip(), "kubernetes.default.svc.cluster.local")
            == nodeconfig.kubernetes_service_ip()
        ),
        deadline=deadline,
        fail=fail,
    )
    _wait("buildkitd's socket", node.buildkit_socket.exists, deadline=deadline, fail=fail)
    log(f"cluster DNS and BuildKit ready after {time.monotonic() - t0:.1f}s")
    return digests


def _node_ready(client: httpx.Client) -> bool:
    response = client.get(f"/api/v1/nodes/{nodeconfig.NODE_NAME}")
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _create_dns_service(client: httpx.Client) -> None:
    """`kube-system/kube-dns` at the cluster DNS address, its endpoint the CoreDNS
    process on the bridge: a Service without selector and an EndpointSlice of ours."""
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns"},
        },
        "spec": {
            "clusterIP": nodeconfig.dns_service_ip(),
            "ports": [{**p, "targetPort": nodeconfig.DNS_PORT} for p in ports],
        },
    }
    slice_: dict[str, Any] = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-coredns",
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "pitstop.dev-devcluster",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [nodeconfig.gateway()], "conditions": {"ready": True}}],
        "ports": [
            {"name": p["name"], "port": nodeconfig.DNS_PORT, "protocol": p["protocol"]}
            for p in ports
        ],
    }
    for path, body in (
        ("/api/v1/namespaces/kube-system/services", service),
        ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", slice_),
    ):
        response = client.post(path, json=body)
        if response.status_code not in (201, 409):
            raise NodeError(f"creating {body['kind']} kube-dns: {response.text}")


def dns_query(server: str, name: str, *, port: int = 53, timeout: float = 1.0) -> str | None:
    """The first A record of `name` from `server` (UDP), or None; a minimal resolver so
    readiness is checked through the same path a pod's lookup takes."""
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, port))
        answer, _ = sock.recvfrom(4096)
    got_id, flags, _, count = struct.unpack("!HHHH", answer[:8])
    if got_id != ident or flags & 0x000F or count == 0:
        return None
    offset = 12 + len(question) + 4
    for _ in range(count):
        # Names in answers are compressed pointers (2 bytes) to the question here.
        offset += 2 if answer[offset] & 0xC0 else answer.index(b"\0", offset) + 1 - offset
        rtype, _, _, length = struct.unpack("!HHIH", answer[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            return socket.inet_ntoa(answer[offset : offset + 4])
        offset += length
    return None
