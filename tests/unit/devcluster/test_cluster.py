"""Pure parts of the cluster: pod CIDRs per node, the recorded state, the shell env."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pitstop.devcluster import cluster, processes

# The scale benchmark: 1,000 ModelDeployments with 2 pods each, every one of them in the
# middle of a rollout (exact-weight providers run the candidate full size beside it).
BENCHMARK_MODELS = 1000
BENCHMARK_PODS = BENCHMARK_MODELS * 2 * 2


def test_each_node_gets_its_own_share_of_the_pod_range() -> None:
    assert cluster.node_pod_cidrs("127.200.0.0/16", 2) == ["127.200.0.0/20", "127.200.16.0/20"]


def test_nodes_hold_the_pods_of_the_scale_benchmark() -> None:
    nodes = [cluster._node(f"kwok-node-{i}", cidr) for i, cidr in
             enumerate(cluster.node_pod_cidrs(cluster.DEFAULT_POD_CIDR, cluster.NODE_COUNT))]  # fmt: skip
    assert sum(int(n["status"]["allocatable"]["pods"]) for n in nodes) >= BENCHMARK_PODS
    for node in nodes:
        # KWOK hands out pod IPs from the node's podCIDR, counting up from its first
        # address without looking at its end: the range must hold every pod it admits.
        addresses = ipaddress.ip_network(node["spec"]["podCIDR"]).num_addresses
        assert addresses - 2 >= int(node["status"]["capacity"]["pods"])


def test_a_pod_range_too_small_for_the_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"127\.200\.0\.0/24 is too small"):
        cluster.node_pod_cidrs("127.200.0.0/24", 2)


def test_cluster_info_round_trips_through_json(tmp_path: Path) -> None:
    info = cluster.ClusterInfo(
        state_dir=tmp_path,
        bin_dir=tmp_path / "bin",
        kubeconfig=tmp_path / "kubeconfig",
        server="https://127.0.0.1:6443",
        ports={"apiserver": 6443, "etcd": 2379},
        processes=(processes.Running("etcd", 42, "/bin/etcd", str(tmp_path / "etcd.log")),),
        pod_cidr="127.200.0.0/16",
    )

    assert cluster.ClusterInfo.from_json(info.to_json()) == info


def test_env_exports_kubeconfig_and_path_for_eval(tmp_path: Path) -> None:
    lines = cluster.Cluster(tmp_path / "my state").env().splitlines()

    assert lines[0] == f"export KUBECONFIG='{tmp_path / 'my state' / 'kubeconfig'}';"
    assert lines[1].startswith("export PATH=")
    assert lines[1].endswith(':"$PATH";')


def test_nothing_recorded_means_nothing_running(tmp_path: Path) -> None:
    the_cluster = cluster.Cluster(tmp_path)

    assert the_cluster.info() is None
    assert the_cluster.status() == {}
    the_cluster.down()  # a no-op, not an error
