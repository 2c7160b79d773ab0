"""The build recipe: wrapper go.mod generation from a parsed upstream go.mod, and the cache."""

from __future__ import annotations

import json
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
