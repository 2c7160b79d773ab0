"""The node's own images, made without pulling anything: pause and a Debian base with python3.

Nothing on this machine may pull from an image registry outside, so the two images
every real node needs are made here. The pause image is one layer holding our static
pause program (`nodebinaries.PAUSE_SOURCE`). The base image is Debian bookworm
(`mmdebstrap --variant=minbase --include=python3`, from Debian's package mirror) as one
layer. `crane` turns a root filesystem into an image in the local registry, sets its
platform (`linux/amd64`, or containerd and BuildKit find no match for the node) and
config, and keeps a copy as an OCI layout in the cache: a later `up` pushes that copy,
so the image — and its digest — is made once and is the same in every cluster.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pitstop.devcluster import binaries, nodebinaries, nodeconfig

Log = Callable[[str], None]

DEBIAN_SUITE = "bookworm"
# pip (and `python`): Dockerfiles written for python:3.11-slim install with them.
BASE_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates")
# Bumped when the recipe below changes, so the cached image is made again.
BASE_RECIPE = "3"


def base_recipe() -> str:
    """The recipe version and the host's CAs it copies: either changing makes it anew."""
    cas = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    return f"{BASE_RECIPE}-{hashlib.sha256(cas).hexdigest()[:8]}"


def _ca_hooks() -> list[str]:
    hooks = []
    if HOST_CA_BUNDLE.is_file():
        hooks.append(f"--customize-hook=copy-in {HOST_CA_BUNDLE} {HOST_CA_BUNDLE.parent}")
    extra = sorted(HOST_EXTRA_CAS.glob("*.crt")) if HOST_EXTRA_CAS.is_dir() else []
    if extra:
        # Kept where update-ca-certificates finds them, should a later step run it.
        hooks.append(f"--customize-hook=mkdir -p $1{HOST_EXTRA_CAS}")
        hooks += [f"--customize-hook=copy-in {ca} {HOST_EXTRA_CAS}" for ca in extra]
    return hooks


# The host's CA bundle goes into the image, and every TLS client there is pointed at
# it: builds on the node reach the package registries as the host does, through a
# TLS-intercepting proxy too.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
BASE_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    f"SSL_CERT_FILE={HOST_CA_BUNDLE}",
    f"PIP_CERT={HOST_CA_BUNDLE}",
    f"REQUESTS_CA_BUNDLE={HOST_CA_BUNDLE}",
)


def images_dir() -> Path:
    return binaries.cache_dir() / "images"


def _layout(name: str) -> Path:
    return images_dir() / name


def _crane(bin_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [str(bin_dir / "crane"), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"crane {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def pause_layer(binary: Path) -> bytes:
    """A tar holding the pause program at /pause, owned by root, mode 0755."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("pause")
        data = binary.read_bytes()
        info.size = len(data)
        info.mode = 0o755
        info.mtime = 0  # the same program gives the same layer, and the same digest
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def debian_rootfs(target: Path, log: Log) -> Path:
    """Debian minbase with python3 as a tar, made by mmdebstrap (as root, ≈ 2 min)."""
    if target.is_file():
        return target
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is missing: `make node-deps` installs it")
    # mmdebstrap picks its output format from the name: keep `.tar` at the end.
    partial = target.with_name(target.name + ".partial.tar")
    started = time.monotonic()
    log(f"making the base root filesystem with mmdebstrap ({DEBIAN_SUITE}, python3)")
    result = subprocess.run(
        [
            "nice", "-n", "10", "mmdebstrap", "--variant=minbase", "--quiet", "--format=tar",
            f"--include={','.join(BASE_PACKAGES)}",
            # No documentation, no apt lists: a smaller layer.
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            '--aptopt=APT::Install-Recommends "false"',
            "--customize-hook=rm -rf $1/var/lib/apt/lists/*",
            # As in python:3.11-slim, `pip install` installs into the image's Python
            # (Debian marks it externally managed, PEP 668).
            "--customize-hook=rm -f $1/usr/lib/python3*/EXTERNALLY-MANAGED",
            *_ca_hooks(),
            DEBIAN_SUITE, str(partial),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
    partial.rename(target)
    log(f"base root filesystem made in {time.monotonic() - started:.0f}s")
    return target


def _make(
    bin_dir: Path,
    ref: str,
    layer: Path,
    mutations: list[str],
    layout: Path,
) -> None:
    """Push `layer` as a one-layer image to `ref`, set its config, keep an OCI copy."""
    staging = f"{ref}-staging"
    _crane(bin_dir, "append", "--insecure", "-f", str(layer), "-t", staging)
    _crane(
        bin_dir, "mutate", "--insecure", staging, "--set-platform", "linux/amd64",
        *mutations, "-t", ref,
    )  # fmt: skip
    partial = layout.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _crane(bin_dir, "pull", "--insecure", "--format=oci", ref, str(partial))
    shutil.rmtree(layout, ignore_errors=True)
    partial.rename(layout)


def push(bin_dir: Path, log: Log) -> dict[str, str]:
    """Push the pause and base images to the node's registry (making them the first
    time); return image reference -> manifest digest."""
    images_dir().mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    wanted = {
        nodeconfig.pause_image(): f"pause-{nodebinaries.PAUSE_VERSION}",
        nodeconfig.base_image(): f"debian-{DEBIAN_SUITE}-python3-{base_recipe()}",
    }
    for ref, name in wanted.items():
        layout = _layout(name)
        started = time.monotonic()
        if layout.is_dir():
            _crane(bin_dir, "push", "--insecure", str(layout), ref)
        else:
            with tempfile.TemporaryDirectory(dir=images_dir()) as tmp:
                if ref == nodeconfig.pause_image():
                    layer = Path(tmp) / "pause.tar"
                    layer.write_bytes(pause_layer(bin_dir / nodebinaries.PAUSE_BINARY))
                    mutations = ["--entrypoint", "/pause"]
                else:
                    layer = debian_rootfs(images_dir() / f"{name}-rootfs.tar", log)
                    mutations = [a for env in BASE_ENV for a in ("--env", env)]
                    mutations += ["--cmd", "python3"]
                _make(bin_dir, ref, layer, mutations, layout)
            (images_dir() / f"{name}-rootfs.tar").unlink(missing_ok=True)
            # Copies made by an older recipe are never pushed again.
            for stale in images_dir().glob(f"{name.split('-')[0]}-*"):
                if stale.is_dir() and stale.name != name:
                    shutil.rmtree(stale)
        digests[ref] = _crane(bin_dir, "digest", "--insecure", ref)
        log(f"{ref} pushed ({digests[ref][:19]}…) in {time.monotonic() - started:.1f}s")
    mirror = nodeconfig.python_slim_mirror_image()
    _crane(bin_dir, "copy", "--insecure", nodeconfig.base_image(), mirror)
    digests[mirror] = digests[nodeconfig.base_image()]
    return digests
