"""What the real node changes on the host, and how `down` undoes every bit of it.

A real node is not contained in a folder: it needs a bridge, iptables chains (the
kubelet's, kube-proxy's, the CNI plugins'), kernel settings (the bridge plugin turns on
IP forwarding, the kubelet sets a few `vm.`/`kernel.` values), network namespaces,
mounts (container root filesystems, volumes), cgroups and a few well-known folders
(`/run/containerd/s` for shim sockets is hard-coded in containerd). This module owns
that ledger: `prepare` records the host as it was in `host.json` under the state dir and
makes the bridge; `restore` (from any process, after a crash too) puts it back: kills
what runs in our cgroups, unmounts, deletes chains, the bridge and folders that did not
exist before, restores the kernel settings. Other engineers' tests share this machine:
`restore` touches only what carries our names (`pitstop0`, `/pitstop` cgroups, chains
named KUBE-*/CNI-*, mounts under the state dir).

It must not talk to the API server; `realnode` stops the node's processes first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pitstop.devcluster import nodeconfig

HOST_FILE = "host.json"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_NAME = "pitstop"

# Kernel settings the node's components may change (the ones FACTS and the sources
# name): the bridge plugin (forwarding), the kubelet with protectKernelDefaults off,
# kube-proxy (conntrack, route_localnet; both turned off in its config but restored
# regardless) and br_netfilter (its bridge hooks).
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)

# Hard-coded paths of upstream components, removed on `down` only if `up` found them
# absent (the kubelet's container-log symlinks, containerd's shim sockets and runc
# state, libcni's result cache).
WATCHED_PATHS = (
    "/run/containerd",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/run/runc",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/run/buildkit",
    "/var/lib/buildkit",
)

# Folders under the node dir that `restore` deletes once nothing is mounted there.
BULKY = ("containerd", "buildkit", "registry", "kubelet", "cni", "pod-logs")

OWNED_CHAIN = re.compile(r"^(KUBE-|CNI-)")

Log = Callable[[str], None]


class HostError(RuntimeError):
    """The host cannot run a real node (not root, a node already running, ...)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise HostError(
            "a real node needs root: it creates a bridge, iptables chains, network "
            "namespaces, mounts and cgroups (run `sudo pitstop dev up --node real`)"
        )


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys: Iterable[str] = SYSCTLS) -> dict[str, str]:
    """Current values of `keys` that exist on this kernel."""
    values: dict[str, str] = {}
    for key in keys:
        with contextlib.suppress(OSError):
            values[key] = _sysctl_path(key).read_text().strip()
    return values


def bridge_exists() -> bool:
    return Path(f"/sys/class/net/{nodeconfig.BRIDGE}").exists()


def prepare(node_dir: Path, log: Log) -> None:
    """Record the host as it is, then create the node's bridge and its routes."""
    require_root()
    if bridge_exists():
        raise HostError(
            f"{nodeconfig.BRIDGE} exists: another real node runs on this host (one at a "
            "time), or one was not taken down — `pitstop dev down` on its state dir"
        )
    node_dir.mkdir(parents=True, exist_ok=True)
    nodeconfig.RUN_DIR.mkdir(mode=0o700, exist_ok=True)
    record = {
        "sysctls": read_sysctls(),
        "absent_paths": [p for p in WATCHED_PATHS if not os.path.lexists(p)],
        "nft_tables": sorted(nft_tables()),
    }
    (node_dir / HOST_FILE).write_text(json.dumps(record, indent=2))
    network = nodeconfig.NODE_POD_CIDR.split("/")[1]
    _run("ip", "link", "add", nodeconfig.BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{nodeconfig.gateway()}/{network}", "dev", nodeconfig.BRIDGE)
    _run("ip", "link", "set", nodeconfig.BRIDGE, "up")
    # ClusterIPs are routed onto the bridge: before kube-proxy programs a Service (or
    # after it is gone) a packet to one stays on this host instead of taking the
    # default route out of the machine.
    _run("ip", "route", "add", nodeconfig.SERVICE_CIDR, "dev", nodeconfig.BRIDGE)
    make_cgroups()
    log(f"bridge {nodeconfig.BRIDGE} at {nodeconfig.gateway()}, cgroups /{CGROUP_NAME}")


def make_cgroups() -> None:
    """The kubelet's `cgroupRoot` (and BuildKit's parent) in every hierarchy: the kubelet
    refuses a root that is missing anywhere."""
    for hierarchy in sorted(Path(CGROUP_ROOT).iterdir()):
        if not (hierarchy / "cgroup.procs").exists():
            continue
        ours = hierarchy / CGROUP_NAME
        ours.mkdir(exist_ok=True)
        # A v1 cpuset child starts with no CPUs and no memory nodes, and then takes
        # no task: give it its parent's.
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / name).exists() and not (ours / name).read_text().strip():
                (ours / name).write_text((hierarchy / name).read_text())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _in_our_cgroup(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(line.split(":", 2)[-1].startswith(f"/{CGROUP_NAME}/") for line in text.splitlines())


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return ""


def stray_processes(bin_dir: Path) -> list[int]:
    """Containers (in our cgroups) and containerd shims (our binary): they outlive
    containerd by design, so stopping the daemon does not stop them."""
    shim = str(bin_dir / "containerd-shim-runc-v2")
    me = os.getpid()
    return [pid for pid in _pids() if pid != me and (_in_our_cgroup(pid) or _exe(pid) == shim)]


def kill_strays(bin_dir: Path, *, timeout: float = 15.0) -> int:
    killed = 0
    deadline = time.monotonic() + timeout
    while True:
        strays = stray_processes(bin_dir)
        if not strays:
            return killed
        if time.monotonic() > deadline:
            raise HostError(f"processes of the node survived SIGKILL: {strays}")
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.1)


def mount_points(mountinfo: str, root: str) -> list[str]:
    """Mount points at or below `root` in a `/proc/self/mountinfo` text, deepest first."""
    points: set[str] = set()
    for line in mountinfo.splitlines():
        # Field 5 is the mount point, with space, tab, newline and backslash
        # octal-escaped (\040 ...).
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == root or point.startswith(root.rstrip("/") + "/"):
            points.add(point)
    return sorted(points, key=lambda p: (p.count("/"), p), reverse=True)


def mounts_under(root: Path) -> list[str]:
    return mount_points(Path("/proc/self/mountinfo").read_text(), str(root.resolve()))


def unmount_all(root: Path) -> int:
    count = 0
    for _ in range(5):  # mounts stacked on one point need one umount each
        points = mounts_under(root)
        if not points:
            return count
        for point in points:
            if _run("umount", point, check=False).returncode != 0:
                _run("umount", "-l", point, check=False)
            count += 1
    leftover = mounts_under(root)
    if leftover:
        raise HostError(f"could not unmount: {leftover}")
    return count


def iptables_removal(saved: str) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """From an `iptables-save` text: the `-t TABLE -D ...` arguments deleting every rule
    of a chain not ours that jumps to one of ours, and (table, chain) of ours."""
    deletes: list[list[str]] = []
    owned: list[tuple[str, str]] = []
    table = ""
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and OWNED_CHAIN.match(line[1:]):
            owned.append((table, line[1:].split()[0]))
        elif line.startswith("-A "):
            fields = shlex.split(line)
            target = fields[fields.index("-j") + 1] if "-j" in fields else ""
            if not OWNED_CHAIN.match(fields[1]) and OWNED_CHAIN.match(target):
                # `-D` takes the rule exactly as `-save` printed it after `-A`.
                deletes.append(["-t", table, "-D", *fields[1:]])
    return deletes, owned


def remove_iptables(family: str) -> int:
    """Delete the rules that jump to our chains, then flush and delete the chains."""
    deletes, owned = iptables_removal(_run(f"{family}-save", check=False).stdout)
    for args in deletes:
        _run(family, *args, check=False)
    for table, chain in owned:
        _run(family, "-t", table, "-F", chain, check=False)
    for table, chain in owned:
        _run(family, "-t", table, "-X", chain, check=False)
    _, left = iptables_removal(_run(f"{family}-save", check=False).stdout)
    if left:
        raise HostError(f"{family} chains left behind: {left}")
    return len(owned)


def nft_tables() -> set[str]:
    """`family name` of every nftables table. iptables (the nf_tables flavour Debian
    installs) creates its tables on first use, and leaves them behind empty."""
    listing = _run("nft", "list", "tables", check=False).stdout
    return {line.removeprefix("table ").strip() for line in listing.splitlines() if line}


def remove_new_tables(before: Iterable[str]) -> list[str]:
    """Delete the tables made since `before` that hold no rule any more (an iptables
    table someone else filled in the meantime stays)."""
    removed: list[str] = []
    for table in sorted(nft_tables() - set(before)):
        family, name = table.split(maxsplit=1)
        if family in ("ip", "ip6"):
            saved = _run(f"{'iptables' if family == 'ip' else 'ip6tables'}-save", "-t", name,
                         check=False).stdout  # fmt: skip
            if any(line.startswith("-A ") for line in saved.splitlines()):
                continue
        elif name != "kube-proxy":  # kube-proxy's nftables mode: ip/ip6/inet kube-proxy
            continue
        _run("nft", "delete", "table", family, name, check=False)
        removed.append(table)
    return removed


def remove_cgroups() -> int:
    count = 0
    root = Path(CGROUP_ROOT)
    for hierarchy in sorted(root.iterdir()) if root.is_dir() else []:
        ours = hierarchy / CGROUP_NAME
        if not ours.is_dir():
            continue
        folders = [Path(d) for d, _, _ in os.walk(ours)]
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(FileNotFoundError):
                folder.rmdir()
                count += 1
    return count


def restore(node_dir: Path, bin_dir: Path, log: Log) -> None:
    """Undo everything `prepare` and the node's components did; safe to run twice."""
    require_root()
    record_file = node_dir / HOST_FILE
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    killed = kill_strays(bin_dir)
    unmounted = unmount_all(node_dir) if node_dir.exists() else 0
    # kube-proxy's own cleanup would need its binary and knows only its chains; the
    # kubelet's (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...) and the CNI plugins'
    # (CNI-*) go the same way, so one generic pass covers all of them.
    chains = sum(remove_iptables(family) for family in ("iptables", "ip6tables"))
    tables = remove_new_tables(record.get("nft_tables", [])) if "nft_tables" in record else []
    # Connections tracked for the pod and Service ranges would otherwise linger.
    for cidr in (nodeconfig.CLUSTER_CIDR, nodeconfig.SERVICE_CIDR):
        for flag in ("-s", "-d"):
            _run("conntrack", "-D", flag, cidr, check=False)
    cgroups = remove_cgroups()
    _run("rm", "-rf", "--one-file-system", str(nodeconfig.RUN_DIR), check=False)
    changed = {
        key: value
        for key, value in record.get("sysctls", {}).items()
        if read_sysctls([key]).get(key) not in (None, value)
    }
    for key, value in changed.items():
        _sysctl_path(key).write_text(value)
    for path in record.get("absent_paths", []):
        if os.path.lexists(path):
            unmount_all(Path(path))
            _run("rm", "-rf", "--one-file-system", path, check=False)
    # Last of the host's changes: while the bridge exists, `prepare` refuses to start
    # another node, which would race with this restore (sysctls, /run/containerd).
    if bridge_exists():
        _run("ip", "link", "delete", nodeconfig.BRIDGE)
    # The node's disk state (unpacked images, the registry's blobs, build caches,
    # volumes): hundreds of MB that no later `up` reuses. Logs and config stay.
    for name in BULKY:
        _run("rm", "-rf", "--one-file-system", str(node_dir / name), check=False)
    record_file.unlink(missing_ok=True)
    log(
        f"host restored: {killed} stray processes killed, {unmounted} unmounts, "
        f"{chains} iptables chains, tables {tables or 'none new'}, {cgroups} cgroups, "
        f"sysctls {sorted(changed) or 'unchanged'}"
    )
