"""Pure parts of the cluster: the recorded state, the shell env."""

from __future__ import annotations

from pathlib import Path

from pitstop.devcluster import cluster, processes


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
