"""Command lines of the control-plane components: which flags, and why each is there.

Pure functions from the cluster's layout (state dir, PKI, ports) to argument lists, so
the flags can be read, reviewed and unit-tested apart from the code that starts
processes. Every listener binds to 127.0.0.1 on a port chosen at start.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pitstop.devcluster import certs

# Room for a scale benchmark (1,000 ModelDeployments mid-rollout: an entry Service and
# two revision Services each); a /24 ran out at about 126 of them.
SERVICE_CIDR = "10.0.0.0/16"
PORT_NAMES = ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok")


@dataclasses.dataclass(frozen=True)
class Layout:
    state_dir: Path
    pki: certs.Pki
    ports: dict[str, int]
    # Where the API server listens: loopback, or a real node's bridge (see realnode).
    apiserver_host: str = "127.0.0.1"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['etcd']}"

    @property
    def server(self) -> str:
        return f"https://{self.apiserver_host}:{self.ports['apiserver']}"


def etcd(layout: Layout) -> list[str]:
    peer_url = f"http://127.0.0.1:{layout.ports['etcd-peer']}"
    return [
        "--name=pitstop",
        f"--data-dir={layout.state_dir / 'etcd-data'}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=pitstop={peer_url}",
        # A throwaway cluster: durability is not worth the fsync latency.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def kube_apiserver(layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        f"--etcd-servers={layout.etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # The `kubernetes` Service's Endpoints may not hold a loopback address
        # (validation refuses 127.0.0.0/8), so the reconciler would fail every 10 s.
        "--endpoint-reconciler-type=none",
        f"--secure-port={layout.ports['apiserver']}",
        # Otherwise it tries to write self-signed certs to /var/run/kubernetes.
        f"--cert-dir={pki.ca.cert.parent}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.service_account_pub}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--profiling=false",
    ]


def kube_controller_manager(layout: Layout, kubeconfig: Path) -> list[str]:
    pki = layout.pki
    return [
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.ports['controller-manager']}",
        # One instance only; skipping the election saves its first lease wait.
        "--leader-elect=false",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca.cert}",
        # Each controller acts as its own ServiceAccount, as in a real cluster, so
        # RBAC mistakes show up here rather than in production.
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
        # The cloud controllers left kube-controller-manager for the
        # cloud-controller-manager, so `*` needs no cloud.
        "--controllers=*",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--cluster-name=pitstop-dev",
        "--profiling=false",
    ]


def kube_scheduler(layout: Layout, kubeconfig: Path) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={layout.ports['scheduler']}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok(layout: Layout, kubeconfig: Path, config: Path) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--server-address=127.0.0.1:{layout.ports['kwok']}",
    ]


def raised_client_limits(args: list[str], qps: int, scheduler: bool = False) -> list[str]:
    """A controller-manager's (or scheduler's) args with its API client limits raised and,
    for the controller-manager, more workers per controller: at their defaults (20 qps)
    a thousand Deployments take minutes to settle and a scale benchmark would measure
    the control plane, not what runs on it."""
    raised = [*args, f"--kube-api-qps={qps}", f"--kube-api-burst={2 * qps}"]
    if not scheduler:
        raised += ["--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
                   "--concurrent-service-endpoint-syncs=20", "--concurrent-gc-syncs=40"]  # fmt: skip
    return raised
