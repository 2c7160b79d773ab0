"""The scale benchmark's control plane: its own, with the controller-manager's and
scheduler's client limits raised (at their defaults the control plane itself is the
floor); the chart's release and credentials come from the integration suite."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import testing

INTEGRATION = Path(__file__).resolve().parents[2] / "integration"
sys.path.insert(0, str(INTEGRATION))

_integration = testing.conftest_module(INTEGRATION / "conftest.py", "pitstop_scale_fixtures")
release = _integration.release
crd = _integration.crd
operator_kubeconfig = _integration.operator_kubeconfig

CLIENT_QPS = 300
# Pod addresses outside the loopback range. The other suites' clusters give pods
# loopback addresses, which the e2e harness can bind model servers to; but the API server
# refuses loopback addresses in EndpointSlices and Endpoints. With such addresses, the
# endpoint controllers failed every write for every Service, retried with backoff, and
# posted a Warning Event each time (≈ 6 to 8 Events per object at N=300). That load falls
# on both sides of the comparison, and no real cluster has it. Here pods run nothing, so
# their addresses only need to be valid. 198.18.0.0/15 is reserved for benchmarks
# (RFC 2544) and is never routed.
POD_CIDR = "198.18.0.0/16"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.DevCluster]:
    handle = devcluster.Cluster(
        tmp_path_factory.mktemp("devcluster"), pod_cidr=POD_CIDR,
        client_qps=CLIENT_QPS,
    )  # fmt: skip
    info = handle.up()
    try:
        yield testing.DevCluster(info)
    finally:
        handle.down()
