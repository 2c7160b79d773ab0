"""The build recipe: wrapper go.mod generation from a parsed upstream go.mod, and the cache."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from pitstop.devcluster import binaries

UPSTREAM = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/google/go-cmp v0.7.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tk8s.io/kube-openapi v0.0.0-20260317180543-43fb72c5454a // pseudo-version, not staging
)

require k8s.io/component-base v0.0.0

require (
\tgithub.com/davecgh/go-spew v1.1.1 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""


def test_parse_requires_reads_blocks_and_single_lines() -> None:
    requires = binaries.parse_requires(UPSTREAM)

    assert requires["github.com/google/go-cmp"] == "v0.7.0"
    assert requires["k8s.io/component-base"] == "v0.0.0"
    assert requires["github.com/davecgh/go-spew"] == "v1.1.1"
    assert "k8s.io/api" in requires


def test_staging_modules_are_the_ones_required_at_v0_0_0_only() -> None:
    assert binaries.staging_modules(UPSTREAM) == [
        "k8s.io/api",
        "k8s.io/client-go",
        "k8s.io/component-base",
    ]


def test_wrapper_gomod_requires_the_module_and_pins_each_staging_module() -> None:
    kubernetes = next(b for b in binaries.builds() if b.name == "kubernetes")

    gomod = binaries.wrapper_gomod_for(kubernetes, UPSTREAM)

    assert "go 1.26.0" in gomod.splitlines()
    assert f"\tk8s.io/kubernetes {binaries.KUBERNETES_VERSION}" in gomod.splitlines()
    for module in ("k8s.io/api", "k8s.io/client-go", "k8s.io/component-base"):
        assert f"\t{module} => {module} v0.36.3" in gomod.splitlines()
    assert "kube-openapi" not in gomod
    assert "./staging" not in gomod


def test_builds_without_a_staging_tag_replace_nothing() -> None:
    etcd = next(b for b in binaries.builds() if b.name == "etcd")

    gomod = binaries.wrapper_gomod_for(etcd, UPSTREAM)

    assert "replace" not in gomod
    assert f"\tgo.etcd.io/etcd/server/v3 {binaries.ETCD_VERSION}" in gomod.splitlines()


def test_every_binary_the_cluster_runs_is_built() -> None:
    built = {name for build in binaries.builds() for name in build.binaries}

    assert built >= {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "etcd",
        "kwok",
        "helm",
        "krew",  # and the krew index's check, for manifests/krew/pitstop.yaml's test
        "validate-krew-manifest",
    }


def test_kubernetes_ldflags_set_the_reported_version() -> None:
    kubernetes = next(b for b in binaries.builds() if b.name == "kubernetes")
    flags = " ".join(kubernetes.ldflags)

    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion={binaries.KUBERNETES_VERSION}" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=36" in flags
        assert f"-X {pkg}.gitTreeState=clean" in flags


def test_cache_is_keyed_by_version_under_pitstop_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITSTOP_CACHE", str(tmp_path))

    assert binaries.bin_dir() == tmp_path / f"k8s-{binaries.KUBERNETES_VERSION}" / "bin"


def test_missing_builds_are_absent_binaries_or_other_versions(tmp_path: Path) -> None:
    wanted = binaries.builds()
    for build in wanted:
        for name in build.binaries:
            (tmp_path / name).write_text("")
    manifest = {name: b.stamp for b in wanted for name in b.binaries}
    manifest["helm"] = "helm.sh/helm/v3@v3.0.0"
    (tmp_path / binaries.MANIFEST_NAME).write_text(json.dumps(manifest))
    (tmp_path / "etcd").unlink()

    missing = binaries.missing_builds(tmp_path, wanted)

    assert [b.name for b in missing] == ["etcd", "helm"]


def test_wrapper_carries_the_upstream_excludes_over() -> None:
    # `go install` refuses BuildKit for its `exclude` directives; they apply only in
    # the main module, so the wrapper must state them itself.
    upstream = (
        "module github.com/moby/buildkit\n\ngo 1.26.8\n\n"
        "require github.com/davecgh/go-spew v1.1.1\n\n"
        "exclude (\n\t// why\n\tgithub.com/davecgh/go-spew v1.1.2-0.2018\n)\n"
        "exclude github.com/pmezard/go-difflib v1.0.1-0.2018\n"
    )
    build = binaries.GoBuild(
        name="buildkit", module="github.com/moby/buildkit", version="v0.34.2",
        packages=("github.com/moby/buildkit/cmd/buildctl",), binaries=("buildctl",),
    )  # fmt: skip

    gomod = binaries.wrapper_gomod_for(build, upstream)

    assert "exclude (\n\tgithub.com/davecgh/go-spew v1.1.2-0.2018\n" in gomod
    assert "\tgithub.com/pmezard/go-difflib v1.0.1-0.2018\n)" in gomod
    assert binaries.parse_excludes("module x\n") == []


def _fake(name: str) -> binaries.GoBuild:
    return binaries.GoBuild(name, f"example.com/{name}", "v1.0.0", (f"./{name}",), (name,))


def test_builds_run_beside_each_other_and_each_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds at once: each fake build waits until the other has started too (it
    would time out if they ran one after the other)."""
    monkeypatch.setenv("PITSTOP_CACHE", str(tmp_path))
    monkeypatch.setenv("PITSTOP_BUILD_JOBS", "2")
    both_started = threading.Barrier(2, timeout=10)

    def build(build: binaries.GoBuild, directory: Path, log: binaries.Log) -> float:
        both_started.wait()
        (directory / build.binaries[0]).write_text("binary")
        return 0.0

    monkeypatch.setattr(binaries, "run_build", build)
    directory = binaries.ensure_binaries(catalog=[_fake("one"), _fake("two")])

    manifest = json.loads((directory / binaries.MANIFEST_NAME).read_text())
    assert manifest == {"one": "example.com/one@v1.0.0", "two": "example.com/two@v1.0.0"}


def test_a_failed_build_is_raised_and_the_others_are_still_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITSTOP_CACHE", str(tmp_path))

    def build(build: binaries.GoBuild, directory: Path, log: binaries.Log) -> float:
        if build.name == "broken":
            raise RuntimeError("go build of broken failed")
        (directory / build.binaries[0]).write_text("binary")
        return 0.0

    monkeypatch.setattr(binaries, "run_build", build)
    catalog = [_fake("broken"), _fake("fine")]
    with pytest.raises(RuntimeError, match="broken"):
        binaries.ensure_binaries(catalog=catalog)

    assert [b.name for b in binaries.missing_builds(binaries.bin_dir(), catalog)] == ["broken"]


@pytest.mark.parametrize("configured", ["0", "two", "-1"])
def test_build_jobs_must_be_a_whole_number_of_at_least_one(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITSTOP_BUILD_JOBS", configured)
    with pytest.raises(ValueError, match="PITSTOP_BUILD_JOBS"):
        binaries.build_jobs()


def test_two_builds_of_one_module_run_one_after_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control plane's Kubernetes build and the node's share most packages: the
    second must find them in Go's build cache, not compile them again at once."""
    monkeypatch.setenv("PITSTOP_CACHE", str(tmp_path))
    monkeypatch.setenv("PITSTOP_BUILD_JOBS", "2")
    control_plane = _fake("kubernetes")
    node = dataclasses.replace(_fake("kubernetes-node"), module=control_plane.module)
    running: set[str] = set()
    overlapped: list[set[str]] = []
    lock = threading.Lock()

    def build(build: binaries.GoBuild, directory: Path, log: binaries.Log) -> float:
        with lock:
            running.add(build.name)
            overlapped.append(set(running))
        time.sleep(0.2)  # a build that takes a while (what is checked: no overlap)
        with lock:
            running.discard(build.name)
        (directory / build.binaries[0]).write_text("binary")
        return 0.0

    monkeypatch.setattr(binaries, "run_build", build)
    binaries.ensure_binaries(catalog=[control_plane, node])

    assert overlapped == [{"kubernetes"}, {"kubernetes-node"}]
