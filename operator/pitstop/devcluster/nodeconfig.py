"""Configuration of the real node's components: every file and flag, and why each is there.

Pure functions from a `NodeLayout` (state dir, bin dir, addresses, ports) to config
texts and argument lists, so the choices can be reviewed and unit-tested apart from the
code that starts processes (`realnode`) and the code that changes the host (`hostnet`).

Addressing: the node owns one bridge, `pitstop0`, whose address (the gateway of the
pod subnet) is the only non-loopback address anything here listens on: the API server
(pods reach it through the `kubernetes` Service), the kubelet, the registry (so a build
running in a pod and containerd on the host name it alike) and CoreDNS. NodePorts are
limited to that address too; nothing binds a public interface.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

from pitstop.devcluster import nodebinaries

BRIDGE = "pitstop0"
NODE_NAME = "pitstop-node"
# The whole cluster's pod range, and the node's share of it (the controller-manager
# hands the first node the first /24, which is also what the CNI config uses).
CLUSTER_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
CLUSTER_DOMAIN = "cluster.local"
REGISTRY_PORT = 5000
KUBELET_PORT = 10250
DNS_PORT = 53
PAUSE_REPOSITORY = "pitstop/pause"
BASE_REPOSITORY = "pitstop/debian-python"
BASE_TAG = "bookworm"
# Unix sockets: a state dir under pytest's tmp path makes paths longer than the 104
# bytes a socket address holds, so they live here (one real node per host anyway).
RUN_DIR = Path("/run/pitstop-node")


def gateway() -> str:
    """The bridge's address: first host of the node's pod subnet."""
    return str(next(ipaddress.ip_network(NODE_POD_CIDR).hosts()))


def service_ip(index: int) -> str:
    return str(ipaddress.ip_network(SERVICE_CIDR)[index])


def kubernetes_service_ip() -> str:
    return service_ip(1)


def dns_service_ip() -> str:
    return service_ip(10)


def registry_host() -> str:
    return f"{gateway()}:{REGISTRY_PORT}"


def buildkit_address() -> str:
    """What `buildctl --addr` takes to reach the node's buildkitd."""
    return f"unix://{RUN_DIR / 'buildkitd.sock'}"


# Dockerfiles name `python:3.11-slim` (BentoML's generated one, the operator's): the
# node's registry is BuildKit's mirror for docker.io and serves the node's base image
# under that name — Debian's python3.11 and pip, not the python.org build.
PYTHON_SLIM_REPOSITORY = "library/python"
PYTHON_SLIM_TAG = "3.11-slim"


def python_slim_mirror_image() -> str:
    return f"{registry_host()}/{PYTHON_SLIM_REPOSITORY}:{PYTHON_SLIM_TAG}"


def pause_image() -> str:
    return f"{registry_host()}/{PAUSE_REPOSITORY}:{nodebinaries.PAUSE_VERSION}"


def base_image() -> str:
    return f"{registry_host()}/{BASE_REPOSITORY}:{BASE_TAG}"


@dataclasses.dataclass(frozen=True)
class NodeLayout:
    state_dir: Path
    bin_dir: Path
    pki_dir: Path
    # Loopback ports chosen free at start: health and metrics endpoints.
    ports: dict[str, int]

    @property
    def node_dir(self) -> Path:
        return self.state_dir / "node"

    @property
    def containerd_socket(self) -> Path:
        return RUN_DIR / "containerd.sock"

    @property
    def buildkit_socket(self) -> Path:
        return Path(buildkit_address().removeprefix("unix://"))

    @property
    def cni_conf_dir(self) -> Path:
        return self.node_dir / "cni" / "net.d"

    @property
    def cni_bin_dir(self) -> Path:
        return self.bin_dir / nodebinaries.CNI_DIR

    @property
    def registry_dir(self) -> Path:
        return self.node_dir / "registry"

    @property
    def kubelet_dir(self) -> Path:
        return self.node_dir / "kubelet"


NODE_PORT_NAMES = ("kubelet-healthz", "proxy-healthz", "proxy-metrics", "dns-health")


# --- containerd and runc -------------------------------------------------------------


def containerd_config(layout: NodeLayout) -> str:
    d = layout.node_dir / "containerd"
    runtime = "io.containerd.cri.v1.runtime"
    images = "io.containerd.cri.v1.images"
    return f"""\
version = 3
root = "{d / "root"}"
state = "{d / "state"}"

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{RUN_DIR / "containerd.sock.ttrpc"}"

[plugins."io.containerd.grpc.v1.cri"]
  # `kubectl exec/logs -f` are proxied through the kubelet to this server.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."{images}"]
  snapshotter = "overlayfs"
  [plugins."{images}".pinned_images]
    # Our own pause image in the local registry: nothing is pulled from outside.
    sandbox = "{pause_image()}"
  [plugins."{images}".registry]
    config_path = "{d / "certs.d"}"

[plugins."{runtime}"]
  enable_selinux = false
  # Without CAP_SYS_RESOURCE (this VM), lowering a sandbox's oom_score_adj below
  # containerd's own fails: "failed to update /proc/self/oom_score_adj".
  restrict_oom_score_adj = true
  # The pods' network namespaces are mounted under the state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."{runtime}".containerd]
    default_runtime_name = "runc"
    [plugins."{runtime}".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."{runtime}".containerd.runtimes.runc.options]
        BinaryName = "{layout.bin_dir / "runc"}"
        # The kubelet uses the cgroupfs driver (no systemd here).
        SystemdCgroup = false
  [plugins."{runtime}".cni]
    bin_dirs = ["{layout.cni_bin_dir}"]
    conf_dir = "{layout.cni_conf_dir}"
    max_conf_num = 1

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"
"""


def registry_hosts_toml() -> str:
    """containerd's `certs.d/<host>/hosts.toml`: the local registry speaks plain HTTP."""
    host = registry_host()
    return f"""\
server = "http://{host}"

[host."http://{host}"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
"""


# --- CNI ----------------------------------------------------------------------------


def cni_conflist(layout: NodeLayout) -> str:
    config = {
        "cniVersion": "1.0.0",
        "name": "pitstop",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # Pods reach the package registries (builds install Python packages)
                # through the host; only traffic leaving the cluster range is NATed.
                "ipMasq": True,
                # A pod that calls its own Service is sent back to itself.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR, "gateway": gateway()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    # Not /var/lib/cni: the address leases go with the cluster.
                    "dataDir": str(layout.node_dir / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(config, indent=2)


# --- kubelet and kube-proxy -----------------------------------------------------------


def kubelet_config(layout: NodeLayout) -> str:
    pki = layout.pki_dir
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": gateway(),
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.ports["kubelet-healthz"],
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "imageServiceEndpoint": f"unix://{layout.containerd_socket}",
        # This VM: cgroup v1 hierarchies, no systemd, swap left as it is.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        # Every cgroup the node makes is under this one, so `down` finds them all.
        "cgroupRoot": "/pitstop",
        "failSwapOn": False,
        "clusterDNS": [dns_service_ip()],
        "clusterDomain": CLUSTER_DOMAIN,
        "podLogsDir": str(layout.node_dir / "pod-logs"),
        # A developer's disk is not a production node's: never evict or collect
        # images because the disk is 85% full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # The kubelet then sets a few kernel settings (vm.overcommit_memory,
        # kernel.panic, ...) instead of refusing to start; `hostnet` restores them.
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        "maxPods": 110,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "nodeStatusReportFrequency": "10s",
    }
    return json.dumps(config, indent=2)


def kubelet(layout: NodeLayout, kubeconfig: Path, config: Path) -> list[str]:
    return [
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={gateway()}",
        f"--root-dir={layout.kubelet_dir}",
        "--v=1",
    ]


def kube_proxy_config(layout: NodeLayout, kubeconfig: Path) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": CLUSTER_CIDR,
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": f"127.0.0.1:{layout.ports['proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{layout.ports['proxy-metrics']}",
        # NodePorts only on the bridge's address, never on a public interface.
        "nodePortAddresses": [f"{gateway()}/32"],
        # Localhost NodePorts would need net.ipv4.conf.all.route_localnet=1.
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        # Zero: leave the host's conntrack table size and timeouts alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    return json.dumps(config, indent=2)


def kube_proxy(config: Path) -> list[str]:
    return [f"--config={config}", "--v=1"]


# --- CoreDNS, registry, BuildKit -------------------------------------------------------


def corefile(layout: NodeLayout, kubeconfig: Path) -> str:
    """Cluster names from the API; any other name is asked of the host's own resolver,
    as the host would (build Jobs install packages from the package registries)."""
    return f"""\
{CLUSTER_DOMAIN}:{DNS_PORT} in-addr.arpa:{DNS_PORT} {{
    bind {gateway()}
    errors
    health 127.0.0.1:{layout.ports["dns-health"]}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {kubeconfig} pitstop-dev
        pods insecure
        fallthrough in-addr.arpa
    }}
    cache 5
}}
.:{DNS_PORT} {{
    bind {gateway()}
    errors
    forward . /etc/resolv.conf
    cache 30
}}
"""


def coredns(corefile_path: Path) -> list[str]:
    return ["-conf", str(corefile_path)]


def registry_config(layout: NodeLayout) -> str:
    return f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {layout.registry_dir}
  delete:
    enabled: true
http:
  addr: {registry_host()}
"""


def buildkitd_config(layout: NodeLayout) -> str:
    d = layout.node_dir / "buildkit"
    return f"""\
root = "{d / "root"}"

[grpc]
  address = ["unix://{layout.buildkit_socket}"]

[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  binary = "{layout.bin_dir / "runc"}"
  # RUN steps use the host's network (package registries), as `docker build` does.
  networkMode = "host"
  defaultCgroupParent = "/pitstop/buildkit"
  gc = true

[worker.containerd]
  enabled = false

[registry."{registry_host()}"]
  http = true
  insecure = true

[registry."docker.io"]
  mirrors = ["{registry_host()}"]
"""


def buildkitd(config: Path) -> list[str]:
    return [f"--config={config}"]
