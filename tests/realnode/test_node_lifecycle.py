"""`up` and `down` of a real node: root is required and said so; `down` gives the host
back exactly as it was (links, routes, iptables and nftables, kernel settings, network
namespaces, mounts, cgroups, well-known folders), and a second `up` works the same."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import local_http
import pytest
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import nodeconfig, testing

pytestmark = pytest.mark.realnode


def test_without_root_up_refuses_with_the_reason(tmp_path: Path) -> None:
    pitstop = Path(sys.executable).parent / "pitstop"
    command = [str(pitstop), "dev", "up", "--node", "real", "--state-dir", str(tmp_path / "s")]
    if os.geteuid() == 0:
        tmp_path.chmod(0o777)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]

    result = subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "a real node needs root" in result.stderr
    assert not (tmp_path / "s" / "node").exists()


def test_down_gives_the_host_back_and_a_second_up_works_the_same(
    root: None, tmp_path: Path, host_snapshot: Callable[[], dict[str, object]]
) -> None:
    before = host_snapshot()
    handle = devcluster.Cluster(tmp_path / "state", node="real")

    for round_ in (1, 2):
        info = handle.up(timeout=300)
        during = host_snapshot()
        assert nodeconfig.BRIDGE in during["links"], round_
        assert any("KUBE-" in rule for rule in during["iptables"]["iptables"]), round_  # type: ignore[index]
        assert info.node == "real"
        assert info.server.startswith(f"https://{nodeconfig.gateway()}:")
        assert local_http.get(f"http://{info.registry}/v2/", timeout=5).status_code == 200
        if round_ == 1:
            # Taken down with a container running behind a Service: its process, its
            # network namespace and veth, its mounts and its CNI chains must go too.
            _run_sleeper(testing.DevCluster(info))

        handle.down()

        assert host_snapshot() == before, round_
        assert not (tmp_path / "state" / "state.json").exists()


def _run_sleeper(cluster: testing.DevCluster) -> None:
    cluster.kubectl("run", "sleeper", f"--image={nodeconfig.base_image()}", "--port=8080",
                    "--expose", "--command", "--", "python3", "-c",
                    "import time; time.sleep(3600)")  # fmt: skip
    cluster.wait(
        "the sleeper Running",
        lambda: (
            cluster.kubectl("get", "pod", "sleeper", "-o", "jsonpath={.status.phase}").stdout
            == "Running"
        ),
        timeout=120,
    )
