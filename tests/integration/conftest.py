"""Fixtures for tests that run against the real local control plane.

`cluster` (session-scoped) starts a control plane with the same code as `pitstop dev up`
but in its own state dir under pytest's tmp path and with its own pod IP range, so it
never collides with a developer's cluster; it is torn down at the end of the session.
`namespace` gives each test a fresh namespace (ready for pods) at the restricted Pod
Security level, and deletes it afterwards.

`release` is the chart, installed once per session with `helm install` (cluster-wide
mode, its CRDs with it); `operator` runs `pitstop run` with a token of the release's
ServiceAccount, as the chart's RBAC allows and no more, and with leader election on a
Lease in the release's namespace as the chart runs it; it fails a test whose operator
was refused anything (a 403, "Forbidden", in its log).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

# The helpers beside this file, also when another suite loads it (tests/e2e does, with
# `testing.conftest_module`, and pytest then puts only its own folder on sys.path).
sys.path.insert(0, str(Path(__file__).parent))

import mesh_crds
import pytest
from metric_webhook import Webhook
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import install, testing
from pitstop.devcluster.operator_process import Election, OperatorProcess


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
    # Every pod Pitstop creates for a model must be admitted at the strictest level.
    cluster.create_namespace(name, pod_security="restricted")
    try:
        yield name
    finally:
        cluster.delete_namespace(name)


# --- The operator under test -------------------------------------------------------


@pytest.fixture(scope="session")
def release(cluster: testing.DevCluster) -> install.Release:
    """`helm install` of the chart, once per session: CRDs, ServiceAccount, RBAC."""
    return install.install(cluster, "pitstop-tests", "pitstop-tests")


@pytest.fixture(scope="session")
def crd(cluster: testing.DevCluster, release: install.Release) -> str:
    """The CRD the chart installed, established."""
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/modeldeployments.pitstop.dev",
    )  # fmt: skip
    return "modeldeployments.pitstop.dev"


@pytest.fixture(scope="session")
def gateway_api(cluster: testing.DevCluster) -> None:
    """The real Gateway API (and Istio) CRDs, served before the operator of a test that
    asks for them starts (it discovers them once)."""
    mesh_crds.install(cluster)


@pytest.fixture(scope="session")
def operator_kubeconfig(
    cluster: testing.DevCluster, release: install.Release, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Credentials of the release's ServiceAccount, what the operator runs with."""
    folder = tmp_path_factory.mktemp("operator-credentials")
    return install.release_kubeconfig(cluster, release, folder / "kubeconfig")


@pytest.fixture
def operator(
    cluster: testing.DevCluster,
    crd: str,
    release: install.Release,
    operator_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """A running `pitstop run` on the chart's RBAC; the test may kill and start it again.
    (It stops before the test's namespace goes: see `DevCluster.delete_namespace`.)

    It leads on the release's Lease under one identity for the whole session, as a pod
    whose container restarts: started again after a kill, it takes its Lease back at
    once, and the next test's operator follows a stopped one without a wait."""
    process = OperatorProcess(
        operator_kubeconfig,
        tmp_path / "operator.log",
        election=Election(release.namespace, name="pitstop-tests"),
        identity="pitstop-tests-operator",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
    process.assert_not_refused()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook metric the test makes pass or fail (see metric_webhook)."""
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()
