"""Pure parts of the cluster: the recorded state, the shell env."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pitstop.devcluster import certs, cluster, components, processes


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


def _running(tmp_path: Path) -> cluster.ClusterInfo:
    names = ("etcd", "kube-apiserver", "kube-controller-manager")
    return cluster.ClusterInfo(
        state_dir=tmp_path,
        bin_dir=tmp_path / "bin",
        kubeconfig=tmp_path / "kubeconfig",
        server="https://127.0.0.1:20002",
        ports={name: 20000 + i for i, name in enumerate(components.PORT_NAMES)},
        processes=tuple(
            processes.Running(name, 40 + i, f"/bin/{name}", str(tmp_path / f"{name}.log"))
            for i, name in enumerate(names)
        ),
        pod_cidr="127.200.0.0/16",
    )


def test_a_component_started_again_gets_the_flags_and_port_it_first_had(tmp_path: Path) -> None:
    info = _running(tmp_path)
    first = components.Layout(state_dir=tmp_path, pki=certs.Pki.at(tmp_path / "pki"),
                              ports=dict(info.ports))  # fmt: skip

    again = cluster.ClusterInfo.from_json(info.to_json()).layout

    assert components.kube_apiserver(again) == components.kube_apiserver(first)
    assert "--secure-port=20002" in components.kube_apiserver(again)
    assert "--etcd-servers=http://127.0.0.1:20000" in components.kube_apiserver(again)


def test_a_restarted_process_replaces_the_recorded_one_in_place(tmp_path: Path) -> None:
    info = _running(tmp_path)
    restarted = processes.Running("kube-apiserver", 99, "/bin/kube-apiserver", "apiserver.log")

    replaced = info.replacing(restarted)

    assert [(p.name, p.pid) for p in replaced.processes] == [
        ("etcd", 40), ("kube-apiserver", 99), ("kube-controller-manager", 42)]  # fmt: skip
    assert replaced.ports == info.ports
    assert info.processes[1].pid == 41  # the recorded info itself is unchanged
    with pytest.raises(KeyError):
        info.replacing(processes.Running("kwok", 7, "/bin/kwok", "kwok.log"))


def test_outages_are_read_back_as_the_restart_wrote_them(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    restart = cluster.Outage(datetime(2026, 11, 29, 11, 43, 15), datetime(2026, 11, 29, 11, 43, 20))
    later = cluster.Outage(datetime(2026, 11, 29, 12, 0), datetime(2026, 11, 29, 12, 0, 3))
    record = tmp_path / "logs" / cluster.OUTAGES_FILE
    record.write_text(restart.to_json() + "\n" + later.to_json() + "\n")

    assert cluster.outages(tmp_path) == [restart, later]
    assert cluster.outages(tmp_path / "elsewhere") == []


def test_a_real_node_is_recorded_with_its_registry_and_old_state_reads_as_kwok(
    tmp_path: Path,
) -> None:
    info = cluster.ClusterInfo(
        state_dir=tmp_path, bin_dir=tmp_path / "bin", kubeconfig=tmp_path / "kubeconfig",
        server="https://10.244.0.1:6443", ports={"apiserver": 6443}, processes=(),
        pod_cidr="10.244.0.0/16", node="real",
    )  # fmt: skip

    assert cluster.ClusterInfo.from_json(info.to_json()) == info
    assert info.registry == "10.244.0.1:5000"
    recorded_before_real_nodes = info.to_json().replace('"node": "real"', '"x": 0')
    assert cluster.ClusterInfo.from_json(recorded_before_real_nodes).node == "kwok"
    assert cluster.ClusterInfo.from_json(recorded_before_real_nodes).registry is None


def test_node_kind_is_checked_and_a_running_cluster_of_the_other_kind_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="node must be one of"):
        cluster.Cluster(tmp_path, node="fake")
    kwok = cluster.ClusterInfo(
        state_dir=tmp_path, bin_dir=tmp_path / "bin", kubeconfig=tmp_path / "kubeconfig",
        server="https://127.0.0.1:6443", ports={}, processes=(), pod_cidr="127.200.0.0/16",
    )  # fmt: skip
    (tmp_path / cluster.STATE_FILE).write_text(kwok.to_json())
    monkeypatch.setattr(cluster.Cluster, "healthy", lambda self, info: True)
    monkeypatch.setattr(cluster.hostnet, "require_root", lambda: None)

    with pytest.raises(cluster.ClusterError, match="a kwok cluster runs in"):
        cluster.Cluster(tmp_path, node="real").up()
