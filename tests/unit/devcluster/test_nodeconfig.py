"""The real node's configuration: nothing binds a public interface, nothing is pulled
from outside, the host settings the node would change are the ones `hostnet` restores."""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import yaml
from pitstop.devcluster import hostnet, nodebinaries, nodeconfig


def _layout(tmp_path: Path) -> nodeconfig.NodeLayout:
    ports = {name: 30000 + i for i, name in enumerate(nodeconfig.NODE_PORT_NAMES)}
    return nodeconfig.NodeLayout(
        state_dir=tmp_path / "state", bin_dir=tmp_path / "bin", pki_dir=tmp_path / "pki",
        ports=ports,
    )  # fmt: skip


def test_addresses_are_the_bridge_gateway_and_the_first_service_ips() -> None:
    assert nodeconfig.gateway() == "10.244.0.1"
    assert nodeconfig.kubernetes_service_ip() == "10.96.0.1"
    assert nodeconfig.dns_service_ip() == "10.96.0.10"
    assert nodeconfig.registry_host() == "10.244.0.1:5000"
    node = ipaddress.ip_network(nodeconfig.NODE_POD_CIDR)
    assert node.subnet_of(ipaddress.ip_network(nodeconfig.CLUSTER_CIDR))  # type: ignore[arg-type]
    assert not node.overlaps(ipaddress.ip_network(nodeconfig.SERVICE_CIDR))


def test_kubelet_serves_on_the_bridge_with_cgroupfs_under_our_root(tmp_path: Path) -> None:
    config = json.loads(nodeconfig.kubelet_config(_layout(tmp_path)))

    assert config["address"] == nodeconfig.gateway()
    assert config["healthzBindAddress"] == "127.0.0.1"
    assert config["readOnlyPort"] == 0
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook"
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False
    assert config["cgroupRoot"] == f"/{hostnet.CGROUP_NAME}"
    assert config["clusterDNS"] == [nodeconfig.dns_service_ip()]
    assert config["podLogsDir"].startswith(str(tmp_path / "state"))


def test_kube_proxy_opens_node_ports_on_the_bridge_only_and_leaves_conntrack(
    tmp_path: Path,
) -> None:
    config = json.loads(nodeconfig.kube_proxy_config(_layout(tmp_path), tmp_path / "kc"))

    assert config["nodePortAddresses"] == [f"{nodeconfig.gateway()}/32"]
    assert config["iptables"]["localhostNodePorts"] is False  # no route_localnet
    assert config["healthzBindAddress"].startswith("127.0.0.1:")
    assert config["metricsBindAddress"].startswith("127.0.0.1:")
    assert config["conntrack"]["maxPerCore"] == 0
    assert config["clusterCIDR"] == nodeconfig.CLUSTER_CIDR


def test_containerd_uses_our_pause_image_runc_and_state_dir(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    config = tomllib.loads(nodeconfig.containerd_config(layout))

    assert config["version"] == 3
    assert config["root"].startswith(str(layout.node_dir))
    assert config["state"].startswith(str(layout.node_dir))
    images = config["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == nodeconfig.pause_image()
    assert nodeconfig.pause_image().startswith(nodeconfig.registry_host() + "/")
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert runc == {"BinaryName": str(layout.bin_dir / "runc"), "SystemdCgroup": False}
    assert runtime["cni"]["bin_dirs"] == [str(layout.bin_dir / nodebinaries.CNI_DIR)]
    stream = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert stream["stream_server_address"] == "127.0.0.1"
    hosts = tomllib.loads(nodeconfig.registry_hosts_toml())
    assert hosts["server"] == f"http://{nodeconfig.registry_host()}"


def test_cni_bridge_is_ours_and_keeps_its_leases_in_the_state_dir(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    config = json.loads(nodeconfig.cni_conflist(layout))

    bridge, portmap = config["plugins"]
    assert bridge["bridge"] == nodeconfig.BRIDGE
    assert bridge["ipam"]["ranges"] == [
        [{"subnet": nodeconfig.NODE_POD_CIDR, "gateway": nodeconfig.gateway()}]
    ]
    assert bridge["ipam"]["dataDir"].startswith(str(layout.node_dir))
    assert portmap["type"] == "portmap"
    assert set(nodebinaries.CNI_PLUGINS) >= {bridge["type"], bridge["ipam"]["type"], "loopback"}


def test_coredns_answers_cluster_names_on_the_bridge_and_asks_the_host_for_others(
    tmp_path: Path,
) -> None:
    corefile = nodeconfig.corefile(_layout(tmp_path), tmp_path / "kubeconfig")

    assert corefile.count(f"bind {nodeconfig.gateway()}") == 2
    assert "kubernetes cluster.local" in corefile
    assert "forward . /etc/resolv.conf" in corefile
    assert "health 127.0.0.1:" in corefile


def test_registry_and_buildkit_listen_on_the_bridge_and_a_socket(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    registry = yaml.safe_load(nodeconfig.registry_config(layout))
    buildkit = tomllib.loads(nodeconfig.buildkitd_config(layout))

    assert registry["http"]["addr"] == nodeconfig.registry_host()
    assert registry["storage"]["filesystem"]["rootdirectory"] == str(layout.registry_dir)
    assert buildkit["grpc"]["address"] == [f"unix://{layout.buildkit_socket}"]
    assert buildkit["worker"]["oci"]["binary"] == str(layout.bin_dir / "runc")
    assert buildkit["worker"]["oci"]["defaultCgroupParent"].startswith(f"/{hostnet.CGROUP_NAME}/")
    assert buildkit["worker"]["containerd"]["enabled"] is False
    assert buildkit["registry"][nodeconfig.registry_host()] == {"http": True, "insecure": True}
    # `FROM python:3.11-slim` is served by the node's registry, never pulled from outside.
    assert buildkit["registry"]["docker.io"] == {"mirrors": [nodeconfig.registry_host()]}


def test_kubelet_registers_under_our_node_name_at_the_bridge(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    args = nodeconfig.kubelet(layout, tmp_path / "kc", tmp_path / "config")

    assert f"--hostname-override={nodeconfig.NODE_NAME}" in args
    assert f"--node-ip={nodeconfig.gateway()}" in args
    assert f"--root-dir={layout.kubelet_dir}" in args
