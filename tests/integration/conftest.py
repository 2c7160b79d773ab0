"""Fixtures for tests that run against the real local control plane.

`cluster` (session-scoped) starts a control plane with the same code as `pitstop dev up`
but in its own state dir under pytest's tmp path and with its own pod IP range, so it
never collides with a developer's cluster; it is torn down at the end of the session.
`namespace` gives each test a fresh namespace (ready for pods) and deletes it afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.DevCluster]:
    handle = devcluster.Cluster(
        tmp_path_factory.mktemp("devcluster"), pod_cidr=testing.TEST_POD_CIDR
    )
    info = handle.up()
    try:
        yield testing.DevCluster(info)
    finally:
        handle.down()


@pytest.fixture
def namespace(cluster: testing.DevCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    # Pods are refused until the controller-manager has created the namespace's
    # `default` ServiceAccount.
    cluster.wait(
        f"ServiceAccount default in {name}",
        lambda: (
            cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
            == 0
        ),
    )
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


# --- The operator under test -------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crd(cluster: testing.DevCluster) -> str:
    """The generated CRD, installed and established."""
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/modeldeployments.pitstop.dev",
    )  # fmt: skip
    return "modeldeployments.pitstop.dev"


@pytest.fixture
def operator(cluster: testing.DevCluster, crd: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A running `pitstop run`; the test may kill and start it again."""
    process = OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
