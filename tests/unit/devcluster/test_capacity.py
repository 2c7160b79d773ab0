"""The local control plane's capacity: room for the scale benchmark, and pod IP blocks
that hold every pod a node admits."""

from __future__ import annotations

import ipaddress

import pytest
from pitstop.devcluster import capacity, cluster, components

# The scale benchmark: 1,000 ModelDeployments with 2 pods each, every one of them in the
# middle of a rollout (exact-weight providers run the candidate full size beside it).
BENCHMARK_MODELS = 1000
BENCHMARK_PODS = BENCHMARK_MODELS * 2 * 2


def test_each_node_gets_its_own_share_of_the_pod_range() -> None:
    assert capacity.node_pod_cidrs("127.200.0.0/16", 2) == ["127.200.0.0/20", "127.200.16.0/20"]


def test_nodes_hold_the_pods_of_the_scale_benchmark() -> None:
    nodes = [cluster._node(f"kwok-node-{i}", cidr) for i, cidr in
             enumerate(capacity.node_pod_cidrs(cluster.DEFAULT_POD_CIDR, cluster.NODE_COUNT))]  # fmt: skip
    assert sum(int(n["status"]["allocatable"]["pods"]) for n in nodes) >= BENCHMARK_PODS
    for node in nodes:
        # KWOK hands out pod IPs from the node's podCIDR, counting up from its first
        # address without looking at its end: the range must hold every pod it admits.
        addresses = ipaddress.ip_network(node["spec"]["podCIDR"]).num_addresses
        assert addresses - 2 >= int(node["status"]["capacity"]["pods"])


def test_a_pod_range_too_small_for_the_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"127\.200\.0\.0/24 is too small"):
        capacity.node_pod_cidrs("127.200.0.0/24", 2)


def test_the_service_range_holds_the_scale_benchmark() -> None:
    """1,000 ModelDeployments mid-rollout: an entry Service and two revision Services
    each, besides the `kubernetes` Service."""
    usable = ipaddress.ip_network(components.SERVICE_CIDR).num_addresses - 2
    assert usable >= 1 + 1000 * 3
