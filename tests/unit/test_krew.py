"""The krew plugin: manifests/krew/pitstop.yaml names the archive that `pitstop.krew`
builds from this checkout (its sha256 is a fresh build's), has what krew and the krew
index ask of a manifest, and the launcher inside runs the CLI pip installed or says
how to install it. tests/integration/test_krew_plugin.py has krew itself install it."""

from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop import krew

REPO = Path(__file__).resolve().parents[2]
PLATFORMS = {(os_, arch) for os_ in ("linux", "darwin") for arch in ("amd64", "arm64")}


def manifest() -> dict[str, Any]:
    plugin: dict[str, Any] = yaml.safe_load((REPO / krew.MANIFEST).read_text())
    return plugin


def members(archive: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    found: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            found[info.name] = (info, handle.read() if handle else b"")
    return found


def extract_launcher(tmp_path: Path) -> Path:
    info, content = members(krew.build(REPO))[krew.LAUNCHER]
    launcher = tmp_path / "store" / krew.LAUNCHER
    launcher.parent.mkdir()
    launcher.write_bytes(content)
    launcher.chmod(info.mode)
    return launcher


def test_the_manifest_carries_the_sha256_of_a_fresh_build() -> None:
    digest = krew.sha256(krew.build(REPO))
    for platform in manifest()["spec"]["platforms"]:
        assert platform["sha256"] == digest, (
            "the launcher or LICENSE changed: put the sha256 that `python -m pitstop.krew` "
            "prints in manifests/krew/pitstop.yaml"
        )


def test_the_archive_does_not_depend_on_the_files_times_modes_or_line_ends(
    tmp_path: Path,
) -> None:
    for _, path, _ in krew.MEMBERS:
        copy = tmp_path / path
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes((REPO / path).read_bytes().replace(b"\n", b"\r\n"))  # as on Windows
        copy.chmod(0o600)
        os.utime(copy, (1_234_567_890, 1_234_567_890))
    assert krew.build(tmp_path) == krew.build(REPO)


def test_the_archive_holds_the_executable_launcher_and_the_license() -> None:
    archive = krew.build(REPO)
    assert archive[4:8] == b"\0\0\0\0"  # gzip mtime
    found = members(archive)
    assert list(found) == [krew.LAUNCHER, "LICENSE"]
    for info, _ in found.values():
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
        assert info.isreg()  # krew's extractor takes regular files and directories only
    assert found[krew.LAUNCHER][0].mode == 0o755
    assert found[krew.LAUNCHER][1] == (REPO / "manifests/krew/kubectl-pitstop").read_bytes()
    assert found["LICENSE"][1] == (REPO / "LICENSE").read_bytes()


@pytest.mark.parametrize("size", [0, 1, 0xFFFF, 0x10000, 200_000])
def test_stored_gzip_reads_back_whole(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    assert gzip.decompress(krew.gzip_stored(data)) == data


def test_the_manifest_has_what_krew_and_its_index_require() -> None:
    plugin = manifest()
    assert plugin["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert plugin["kind"] == "Plugin"
    name = plugin["metadata"]["name"]
    # krew's IsSafePluginName; its index names the file after the plugin.
    assert re.fullmatch(r"[\w-]+", name)
    assert krew.MANIFEST.name == f"{name}.yaml"
    spec = plugin["spec"]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert spec["version"] == f"v{version}"
    assert spec["shortDescription"]
    assert "\n" not in spec["shortDescription"]
    assert spec["description"]
    assert spec["homepage"].startswith("https://")
    assert "pip install" in spec["caveats"]

    selected = [
        tuple(p["selector"]["matchLabels"][k] for k in ("os", "arch")) for p in spec["platforms"]
    ]
    assert sorted(selected) == sorted(PLATFORMS)  # each once: no overlapping selectors
    archived = members(krew.build(REPO))
    for platform in spec["platforms"]:
        assert set(platform["selector"]) == {"matchLabels"}
        assert set(platform["selector"]["matchLabels"]) == {"os", "arch"}
        assert platform["uri"].endswith(f"/{spec['version']}/{krew.ARCHIVE_NAME}")
        assert platform["bin"] == krew.LAUNCHER
        assert archived[platform["bin"]][0].mode & 0o111
        assert "files" not in platform  # krew copies the whole archive, LICENSE with it


def test_the_launcher_says_how_to_install_pitstop_when_it_is_missing(tmp_path: Path) -> None:
    launcher = extract_launcher(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        [str(launcher), "status", "fraud"], env={"PATH": str(empty)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 127
    assert done.stdout == ""
    assert "no `pitstop` command on PATH" in done.stderr
    assert "pip install" in done.stderr


def test_the_launcher_runs_the_plugin_pip_installed_beside_pitstop(tmp_path: Path) -> None:
    scripts = Path(sys.executable).parent
    for command in ("pitstop", "kubectl-pitstop"):  # pip installs both here (`make venv`)
        assert (scripts / command).is_file()
    launcher = extract_launcher(tmp_path)
    done = subprocess.run(
        [str(launcher), "--help"], env={"PATH": f"{scripts}{os.pathsep}/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # pip's kubectl-pitstop (the plugin's group), not `pitstop`, which also has `dev`, `run`...
    assert done.stdout.startswith("Usage: kubectl-pitstop")
    assert "Watch and steer ModelDeployments" in done.stdout
    assert all(command in done.stdout for command in ("status", "promote", "abort", "undo"))


def test_the_launcher_refuses_to_run_itself_in_a_loop(tmp_path: Path) -> None:
    launcher = extract_launcher(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pitstop").symlink_to("/bin/true")
    (elsewhere / "kubectl-pitstop").symlink_to(launcher)
    done = subprocess.run(
        [str(launcher), "status"], env={"PATH": f"{elsewhere}{os.pathsep}/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 127
    assert "leads back to this launcher" in done.stderr
