"""The real node's binaries: which Go modules, which versions, built how.

Everything a real node runs besides the control plane — kubelet, kube-proxy, containerd
and its runc shim, runc, the CNI plugins, CoreDNS, a registry, BuildKit, crane and
Traefik (the Gateway API data plane) — is
built by `binaries`' machinery (one generated wrapper module per group, cached beside
the control plane's binaries, built once and reused). Only the pause program is ours:
its source is written here and built the same way, without cgo.

It must not start processes other than `go`; running the node is `realnode`'s job.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pitstop.devcluster import binaries, traefikbuild

RUNC_VERSION = "v1.5.3"
CONTAINERD_VERSION = "v2.4.2"
CNI_PLUGINS_VERSION = "v1.10.0"
COREDNS_VERSION = "v1.14.7"
DISTRIBUTION_VERSION = "v3.1.2"
BUILDKIT_VERSION = "v0.34.2"
CRANE_VERSION = "v0.22.1"
ROOTLESSKIT_VERSION = "v2.3.6"
KANIKO_VERSION = "v1.23.2"
PAUSE_VERSION = "1"

CNI_DIR = "cni"
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


def builds() -> tuple[binaries.GoBuild, ...]:
    """Every build the real node needs, cheapest first so a failure shows early."""
    kubernetes = next(b for b in binaries.builds() if b.name == "kubernetes")
    cni_paths = {
        "bridge": "plugins/main/bridge",
        "loopback": "plugins/main/loopback",
        "host-local": "plugins/ipam/host-local",
        "portmap": "plugins/meta/portmap",
    }
    containerd = "github.com/containerd/containerd/v2"
    return (
        binaries.GoBuild(
            name="crane",
            module="github.com/google/go-containerregistry",
            version=CRANE_VERSION,
            packages=("github.com/google/go-containerregistry/cmd/crane",),
            binaries=("crane",),
        ),
        binaries.GoBuild(
            name="cni-plugins",
            module="github.com/containernetworking/plugins",
            version=CNI_PLUGINS_VERSION,
            packages=tuple(
                f"github.com/containernetworking/plugins/{cni_paths[p]}" for p in CNI_PLUGINS
            ),
            binaries=tuple(f"{CNI_DIR}/{p}" for p in CNI_PLUGINS),
        ),
        # libseccomp (Debian's libseccomp-dev) is linked in: the kubelet asks for the
        # RuntimeDefault seccomp profile that `restricted` pods require.
        binaries.GoBuild(
            name="runc",
            module="github.com/opencontainers/runc",
            version=RUNC_VERSION,
            packages=("github.com/opencontainers/runc",),
            binaries=("runc",),
            cgo=True,
            tags=("seccomp",),
            ldflags=(f"-X main.version={RUNC_VERSION.lstrip('v')}",),
        ),
        binaries.GoBuild(
            name="containerd",
            module=containerd,
            version=CONTAINERD_VERSION,
            packages=(
                f"{containerd}/cmd/containerd",
                f"{containerd}/cmd/containerd-shim-runc-v2",
                f"{containerd}/cmd/ctr",
            ),
            binaries=("containerd", "containerd-shim-runc-v2", "ctr"),
            tags=("no_btrfs", "no_devmapper", "no_zfs"),
            ldflags=(f"-X {containerd}/version.Version={CONTAINERD_VERSION}",),
        ),
        binaries.GoBuild(
            name="registry",
            module="github.com/distribution/distribution/v3",
            version=DISTRIBUTION_VERSION,
            packages=("github.com/distribution/distribution/v3/cmd/registry",),
            binaries=("registry",),
        ),
        # The root package of the module is CoreDNS's main, with its default plugins.
        binaries.GoBuild(
            name="coredns",
            module="github.com/coredns/coredns",
            version=COREDNS_VERSION,
            packages=("github.com/coredns/coredns",),
            binaries=("coredns",),
        ),
        binaries.GoBuild(
            name="buildkit",
            module="github.com/moby/buildkit",
            version=BUILDKIT_VERSION,
            packages=(
                "github.com/moby/buildkit/cmd/buildkitd",
                "github.com/moby/buildkit/cmd/buildctl",
            ),
            binaries=("buildkitd", "buildctl"),
            ldflags=(f"-X github.com/moby/buildkit/version.Version={BUILDKIT_VERSION}",),
        ),
        # What runs BuildKit rootless inside a build Job's pod (the node's own BuildKit
        # image; see nodeimages).
        binaries.GoBuild(
            name="rootlesskit",
            module="github.com/rootless-containers/rootlesskit/v2",
            version=ROOTLESSKIT_VERSION,
            packages=("github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit",),
            binaries=("rootlesskit",),
        ),
        # kaniko's executor, for the node's own kaniko image (see buildimages). The
        # upstream repository is archived (2025) but its module still builds from the
        # proxy: its go.mod has no `replace` or `exclude`.
        binaries.GoBuild(
            name="kaniko",
            module="github.com/GoogleContainerTools/kaniko",
            version=KANIKO_VERSION,
            packages=("github.com/GoogleContainerTools/kaniko/cmd/executor",),
            binaries=("kaniko-executor",),
            ldflags=(
                f"-X github.com/GoogleContainerTools/kaniko/pkg/version.version={KANIKO_VERSION}",
            ),
        ),
        # The Gateway API data plane (its three stand-ins: see traefikbuild).
        traefikbuild.build(),
        # Same wrapper recipe as the control plane (staging modules pinned), own folder.
        # Built after the control plane's Kubernetes binaries, never beside them (one
        # module: see binaries.ensure_binaries), and last, so with several builds at a
        # time the others keep the other workers busy meanwhile.
        binaries.GoBuild(
            name="kubernetes-node",
            module=kubernetes.module,
            version=kubernetes.version,
            packages=("k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"),
            binaries=("kubelet", "kube-proxy"),
            ldflags=kubernetes.ldflags,
            staging_tag=kubernetes.staging_tag,
        ),
    )


# The sandbox ("pause") container: holds a pod's namespaces open and reaps orphans,
# since it is PID 1 of the pod when the pod shares its process namespace.
PAUSE_SOURCE = """\
// The pod sandbox process of the pitstop dev node: it does nothing but wait, until
// SIGTERM or SIGINT ends it, and reaps any zombie handed to it as PID 1.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-children:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
"""

PAUSE_BINARY = "pause"


def _pause_stamp() -> str:
    return f"pitstop.dev/pause@{PAUSE_VERSION}"


def ensure_pause(log: binaries.Log = lambda _: None) -> Path:
    """Build our pause program (static, no cgo) into the bin dir once; return its path."""
    directory = binaries.bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / PAUSE_BINARY
    if target.is_file() and binaries.read_manifest(directory).get(PAUSE_BINARY) == _pause_stamp():
        return target
    with (binaries.cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        work = binaries.cache_dir() / "build" / "pause"
        work.mkdir(parents=True, exist_ok=True)
        (work / "go.mod").write_text("module pitstop.dev/devcluster/pause\n\ngo 1.26\n")
        (work / "main.go").write_text(PAUSE_SOURCE)
        started = time.monotonic()
        subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(target), "."],
            cwd=work,
            env=binaries.go_env(),
            check=True,
            capture_output=True,
        )
        manifest = binaries.read_manifest(directory)
        manifest[PAUSE_BINARY] = _pause_stamp()
        (directory / binaries.MANIFEST_NAME).write_text(
            json.dumps(manifest, indent=2, sort_keys=True)
        )
        log(f"built the pause program in {time.monotonic() - started:.0f}s")
    return target


def ensure(
    log: binaries.Log = lambda _: None,
    *,
    control_plane: Sequence[binaries.GoBuild] = (),
    force: bool = False,
) -> Path:
    """Build whatever the node lacks, and whatever of `control_plane`'s builds is
    missing, as one batch (`binaries.ensure_binaries`: `PITSTOP_BUILD_JOBS` at a time,
    so the node's can run beside the control plane's where more cores make that pay)."""
    catalog = (*control_plane, *builds())
    directory = binaries.ensure_binaries(log=log, catalog=catalog, force=force)
    ensure_pause(log)
    return directory
