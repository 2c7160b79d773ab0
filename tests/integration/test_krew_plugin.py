"""krew installs `kubectl pitstop` from manifests/krew/pitstop.yaml, and the plugin it
installed shows a ModelDeployment of the real control plane.

krew and the krew index's own manifest check (validate-krew-manifest) are built from
their Go module like the control plane's binaries (`binaries.builds()`). Every krew run
here has a KREW_ROOT of its own and a network namespace of its own, with no interface
up: with --manifest krew reads no plugin index, with --archive it downloads nothing,
and as a development build it never asks for a newer krew — so it reaches nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop import krew
from pitstop.devcluster import binaries, testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / krew.MANIFEST
VERSION = yaml.safe_load(MANIFEST.read_text())["spec"]["version"]
PLATFORMS = [(os_, arch) for os_ in ("linux", "darwin") for arch in ("amd64", "arm64")]


@pytest.fixture(scope="module")
def krew_bin() -> Path:
    """The binaries' cache, with krew and validate-krew-manifest built into it."""
    return binaries.ensure_binaries(only=("krew",))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A fresh build of the archive the manifest names."""
    path = tmp_path / krew.ARCHIVE_NAME
    path.write_bytes(krew.build(REPO))
    return path


def krew_install(
    krew_bin: Path, root: Path, archive: Path, platform: tuple[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`kubectl krew install --manifest --archive` into KREW_ROOT=`root`, offline."""
    # kubectl finds krew as the plugin `kubectl-krew`, the name krew installs itself as.
    plugins = root.with_name(f"{root.name}-plugins")
    plugins.mkdir()
    (plugins / "kubectl-krew").symlink_to(krew_bin / "krew")
    env = {
        "PATH": os.pathsep.join([str(root / "bin"), str(plugins), str(krew_bin), "/usr/bin:/bin"]),
        "HOME": str(root.parent),
        "KREW_ROOT": str(root),
        "KREW_NO_UPGRADE_CHECK": "1",
    }
    if platform is not None:  # as validate-krew-manifest installs each platform
        env |= {"KREW_OS": platform[0], "KREW_ARCH": platform[1]}
    done = subprocess.run(
        ["unshare", "--map-root-user", "--net", "kubectl", "krew", "install",
         f"--manifest={MANIFEST}", f"--archive={archive}"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Installed plugin: pitstop" in done.stderr
    return done


def test_the_krew_index_check_accepts_the_manifest(krew_bin: Path) -> None:
    # Its install step would download `uri`; the next test does it from the archive.
    done = subprocess.run(
        [str(krew_bin / "validate-krew-manifest"), f"-manifest={MANIFEST}", "-skip-install"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for check in ("structural validation OK", "all spec.platform[] items are used",
                  "no overlapping spec.platform[].selector"):  # fmt: skip
        assert check in done.stderr


@pytest.mark.parametrize("platform", PLATFORMS, ids=["/".join(p) for p in PLATFORMS])
def test_krew_installs_the_archive_with_its_license(
    krew_bin: Path, archive: Path, tmp_path: Path, platform: tuple[str, str]
) -> None:
    root = tmp_path / "krew"
    krew_install(krew_bin, root, archive, platform)
    store = root / "store" / "pitstop" / VERSION
    assert sorted(p.name for p in store.iterdir()) == ["LICENSE", krew.LAUNCHER]
    link = root / "bin" / "kubectl-pitstop"
    assert link.is_symlink()
    assert link.resolve() == (store / krew.LAUNCHER).resolve()
    assert os.access(link, os.X_OK)
    assert (root / "receipts" / "pitstop.yaml").is_file()


def test_kubectl_pitstop_status_through_the_plugin_krew_installed(
    cluster: testing.DevCluster,
    namespace: str,
    operator: OperatorProcess,
    krew_bin: Path,
    archive: Path,
    tmp_path: Path,
) -> None:
    root = tmp_path / "krew"
    krew_install(krew_bin, root, archive)
    cluster.kubectl("apply", "-n", namespace, "-f", str(REPO / "manifests/samples/fraud.yaml"))

    def healthy() -> dict[str, Any] | None:
        md = json.loads(cluster.kubectl("get", "md", "fraud", "-n", namespace, "-o", "json").stdout)
        status: dict[str, Any] = md.get("status") or {}
        return status if status.get("phase") == "Healthy" else None

    revision = cluster.wait("fraud Healthy", healthy)["stable"]["revision"]

    def kubectl_pitstop(*path: Path) -> subprocess.CompletedProcess[str]:
        search = os.pathsep.join([str(root / "bin"), str(cluster.bin_dir), *map(str, path),
                                  "/usr/bin:/bin"])  # fmt: skip
        # kubectl runs the first kubectl-pitstop on PATH: krew's; pip's comes after it.
        assert shutil.which("kubectl-pitstop", path=search) == str(root / "bin" / "kubectl-pitstop")
        return subprocess.run(
            ["kubectl", "pitstop", "status", "fraud", "-n", namespace],
            env={"PATH": search, "HOME": str(tmp_path), "KUBECONFIG": str(cluster.kubeconfig)},
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip

    # With the Pitstop CLI pip installed beside this interpreter on PATH.
    shown = kubectl_pitstop(Path(sys.executable).parent)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[:2] == ["fraud", "Healthy"]
    assert f"stable  v1 ({revision})" in shown.stdout
    assert "serves with 2/2 ready replicas" in shown.stdout

    # Without it: krew's launcher says how to install it.
    assert shutil.which("pitstop", path="/usr/bin:/bin") is None
    missing = kubectl_pitstop()
    assert missing.returncode == 127
    assert "pip install" in missing.stderr
