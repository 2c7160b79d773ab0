"""Fixtures for tests on a real node: `pitstop dev up --node real` in a state dir of
the test's own, torn down (and the host given back) at the end of each module.

These tests need root (they create a bridge, iptables chains, network namespaces,
mounts and cgroups) and the node's binaries (built once, ≈ 10 min cold); they are not
part of `make test`: `make realnode` runs them. Only one real node runs on a host at a
time, so each module's node is down before the next module's comes up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pitstop.devcluster import binaries, hostnet, testing
from pitstop.devcluster import cluster as devcluster

pytestmark = pytest.mark.realnode


@pytest.fixture(scope="session")
def root() -> None:
    """Skips the test unless it runs as root."""
    if os.geteuid() != 0:
        pytest.skip("a real node needs root (bridge, iptables, netns, mounts, cgroups)")


@pytest.fixture(scope="module")
def real_cluster(
    root: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[testing.DevCluster]:
    handle = devcluster.Cluster(tmp_path_factory.mktemp("realnode"), node="real")
    info = handle.up(timeout=300)
    try:
        yield testing.DevCluster(info)
    finally:
        handle.down()


@pytest.fixture
def host_snapshot() -> Callable[[], dict[str, object]]:
    """A function returning what a real node may change on the host, comparably."""
    return _host_snapshot


def _host_snapshot() -> dict[str, object]:

    def text(*args: str) -> str:
        return subprocess.run(list(args), capture_output=True, text=True, check=False).stdout

    chains = {
        family: sorted(
            line for line in text(f"{family}-save").splitlines() if line.startswith((":", "-A"))
        )
        for family in ("iptables", "ip6tables")
    }
    return {
        "links": sorted(
            line.split(":")[1].strip() for line in text("ip", "-o", "link").splitlines()
        ),
        "routes": sorted(text("ip", "route").splitlines()),
        "iptables": chains,
        "sysctls": hostnet.read_sysctls(),
        "nft_tables": sorted(hostnet.nft_tables()),
        # Other engineers' control planes run from the same bin dir: only the node's.
        "node_processes": sorted(
            {_exe(pid) for pid in _pids() if Path(_exe(pid)).name in NODE_PROGRAMS}
            | {str(pid) for pid in hostnet.stray_processes(binaries.bin_dir())}
        ),
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "paths": sorted(p for p in hostnet.WATCHED_PATHS if os.path.lexists(p)),
        "cgroups": sorted(
            str(p) for p in Path(hostnet.CGROUP_ROOT).glob(f"*/{hostnet.CGROUP_NAME}")
        ),
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
    }


NODE_PROGRAMS = {"containerd", "containerd-shim-runc-v2", "runc", "kubelet", "kube-proxy",
                 "coredns", "registry", "buildkitd", "pause"}  # fmt: skip


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""
