"""The real node's build recipe: every program the node runs is built, as the node needs it."""

from __future__ import annotations

from pitstop.devcluster import binaries, nodebinaries


def test_every_program_the_node_runs_or_images_carry_is_built_once() -> None:
    built = [binary for build in nodebinaries.builds() for binary in build.binaries]

    assert len(built) == len(set(built))
    assert set(built) >= {
        "containerd", "containerd-shim-runc-v2", "runc", "kubelet", "kube-proxy", "coredns",
        "registry", "buildkitd", "buildctl", "crane", "rootlesskit", "kaniko-executor", "traefik",
        *(f"{nodebinaries.CNI_DIR}/{plugin}" for plugin in ("bridge", "host-local", "loopback", "portmap")),
    }  # fmt: skip
    # Nothing clashes with the control plane's groups or binaries in the shared cache.
    control_plane = binaries.builds()
    assert not {b.name for b in control_plane} & {b.name for b in nodebinaries.builds()}
    assert not {x for b in control_plane for x in b.binaries} & set(built)


def test_runc_links_libseccomp_and_kubelet_uses_the_control_planes_recipe() -> None:
    by_name = {build.name: build for build in nodebinaries.builds()}
    kubernetes = next(b for b in binaries.builds() if b.name == "kubernetes")

    assert by_name["runc"].cgo
    assert by_name["runc"].tags == ("seccomp",)
    assert not any(build.cgo for name, build in by_name.items() if name != "runc")
    node = by_name["kubernetes-node"]
    assert (node.module, node.version, node.staging_tag) == (
        kubernetes.module, kubernetes.version, kubernetes.staging_tag,
    )  # fmt: skip


def test_the_pause_program_is_ours_and_exits_on_sigterm() -> None:
    assert "package main" in nodebinaries.PAUSE_SOURCE
    assert "syscall.SIGTERM" in nodebinaries.PAUSE_SOURCE
    assert "Wait4" in nodebinaries.PAUSE_SOURCE  # reaps zombies as PID 1
