"""Fixtures for end-to-end tests: the control plane and operator of the integration
suite, real model servers (`kubelet`) and user traffic (`gateway`).

`PITSTOP_E2E_NODE=real` (root, the node's binaries: `make node-binaries`) runs the same
scenarios on a real node instead of KWOK and the kubelet emulator: the scenario models
are built into images by the node's BuildKit and run by the real kubelet
(`harness.realnode`). The default, `kwok`, needs neither root nor the node.

`prometheus_server` is a real Prometheus scraping the namespace's Ready pods, found the
way its Kubernetes service discovery would (see harness.prometheus).

`cluster` is this suite's own (a separate control plane from the integration suite's,
on a pod range of its own): its pods' IPs are bound by real servers, which must not
collide with another e2e session on the host. `namespace`, `release`, `crd`,
`operator_kubeconfig` and `operator` are the integration suite's fixtures (the chart
installed with helm, the operator on its ServiceAccount), imported rather than copied.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import testing

HERE = Path(__file__).parent
TESTS = HERE.parent
# The serving suite's helpers (Server, metric) are reused, not copied; pytest puts
# tests/serving on sys.path only once it reaches that folder's conftest.
sys.path.insert(0, str(TESTS / "serving"))

from harness import deployment, gateway, kubelet, listing, models, prometheus, realnode  # noqa: E402

_integration = testing.conftest_module(
    TESTS / "integration" / "conftest.py", "pitstop_integration_fixtures"
)
namespace = _integration.namespace
crd = _integration.crd
release = _integration.release
operator_kubeconfig = _integration.operator_kubeconfig
operator = _integration.operator


def _free_pod_range() -> str:
    """A /16 of 127.0.0.0/8 that nothing on the host listens in (checked on .0.1)."""
    for _ in range(20):
        octet = random.randrange(202, 250)
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((f"127.{octet}.0.1", 3000)) != 0:
                return f"127.{octet}.0.0/16"
    raise RuntimeError("no free loopback /16 for pods")


NODE = realnode.node()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.DevCluster]:
    folder = tmp_path_factory.mktemp("devcluster")
    if NODE == "real":
        if os.geteuid() != 0:
            pytest.fail("PITSTOP_E2E_NODE=real needs root (bridge, iptables, netns, cgroups)")
        handle = devcluster.Cluster(folder, node="real")
        info = handle.up(timeout=300)
    else:
        handle = devcluster.Cluster(folder, pod_cidr=_free_pod_range(), probe_readiness=True)
        info = handle.up()
    try:
        yield testing.DevCluster(info)
    finally:
        handle.down()


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The scenario models, packaged and built once: (BENTOML_HOME, {version: the bento
    folder its image holds})."""
    home = tmp_path_factory.mktemp("e2e-models") / "bentoml"
    built = subprocess.run(
        [sys.executable, "-m", "harness.models"],
        cwd=HERE,
        # The build imports the training helpers (tests/serving) and the harness.
        env={
            **os.environ,
            **_server_env(home),
            "PYTHONPATH": os.pathsep.join([str(HERE), str(TESTS / "serving")]),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    bentos: dict[str, str] = json.loads(built.stdout.strip().splitlines()[-1])
    return home, bentos


@pytest.fixture(scope="session")
def model_images(
    cluster: testing.DevCluster, model_store: tuple[Path, dict[str, str]]
) -> dict[str, str]:
    """version -> the image a ModelDeployment names: on a real node, each scenario model
    built by its BuildKit and pushed to its registry (by digest); with KWOK, the names
    the kubelet emulator maps to bentos."""
    _, bentos = model_store
    if NODE == "real":
        return realnode.build_images(cluster.bin_dir, bentos, print)
    return {version: models.image(version) for version in bentos}


def _server_env(home: Path) -> dict[str, str]:
    # No PYTHONPATH: the fault wrappers' classes (harness.faults) travel inside their
    # packages (packaging.code), as they would in an image.
    return {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}


# The serving template's defaults, as its image would carry them (model_images/README.md).
# Not PITSTOP_API_KEYS_DIR: the image leaves it unset, and naming it requires keys (the
# operator sets it, with the Secret's mount, only for a ModelDeployment with auth).
TEMPLATE_ENV = {
    "PITSTOP_MIRROR_CONFIG": "/etc/pitstop/mirror/mirror.json",
}


@pytest.fixture
def namespace_listing(cluster: testing.DevCluster, namespace: str) -> listing.Listing:
    """The namespace's pods and Services, one read shared by the kubelet emulator, the
    gateways and Prometheus (see harness.listing)."""
    return listing.Listing(cluster, namespace)


@pytest.fixture
def kubelet_emulator(
    cluster: testing.DevCluster,
    namespace: str,
    model_store: tuple[Path, dict[str, str]],
    model_images: dict[str, str],
    namespace_listing: listing.Listing,
    tmp_path: Path,
) -> Iterator[kubelet.Kubelet | realnode.Pods]:
    """Real model servers for the namespace's pods; image `models.image(v)` serves v.
    On a real node, the real kubelet runs them: this only finds them (`servers`)."""
    if NODE == "real":
        yield realnode.Pods(cluster, namespace)
        return
    home, bentos = model_store
    images = {
        models.image(version): kubelet.Image(
            bento, {**TEMPLATE_ENV, "PITSTOP_MODEL": f"{models.NAME}:{version}"}
        )
        for version, bento in bentos.items()
    }
    with kubelet.Kubelet(
        cluster, namespace, images, tmp_path / "pods", host_env=_server_env(home),
        listing=namespace_listing,
    ) as emulator:  # fmt: skip
        yield emulator
    assert not emulator.problems, emulator.problems


@pytest.fixture
def md(
    cluster: testing.DevCluster, namespace: str, operator: Any, model_images: dict[str, str]
) -> deployment.Deployment:
    """The ModelDeployment `fraud` in the test's namespace, with the operator running."""
    return deployment.Deployment(cluster, namespace, images=model_images)


@pytest.fixture
def gateway_for(
    cluster: testing.DevCluster,
    namespace: str,
    kubelet_emulator: kubelet.Kubelet | realnode.Pods,
    namespace_listing: listing.Listing,
) -> Iterator[Callable[..., gateway.Gateway]]:
    """Starts a Gateway on an entry: `gateway_for("fraud", rps=20, http_route=None)`;
    on a real node, through the entry Service's ClusterIP (see harness.gateway)."""
    started: list[gateway.Gateway] = []

    def start(entry: str = "fraud", rows: Any = None, **options: Any) -> gateway.Gateway:
        # On a real node, users of the service provider go through the entry Service's
        # ClusterIP (kube-proxy); a gateway-api route has no data plane here to go through.
        if NODE == "real" and options.get("http_route") is None:
            options.setdefault("through_service", True)
        load = gateway.Gateway(
            cluster, namespace, entry, rows or models.rows(seed=len(started)),
            listing=namespace_listing, **options,
        )  # fmt: skip
        load.start()
        started.append(load)
        return load

    try:
        yield start
    finally:
        for load in started:
            load.stop()


@pytest.fixture
def prometheus_server(
    cluster: testing.DevCluster, namespace: str, namespace_listing: listing.Listing, tmp_path: Path
) -> Iterator[prometheus.Prometheus]:
    """A real Prometheus on 127.0.0.1 (a free port) scraping the namespace's Ready pods
    every second; `.url` is its address. Installed by `make system-deps`."""
    if prometheus.binary() is None:
        pytest.fail("no `prometheus` on PATH: run `make system-deps` (as root)")
    with prometheus.Prometheus(
        cluster, namespace, tmp_path / "prometheus", listing=namespace_listing
    ) as server:
        yield server
    assert not server.problems, server.problems
