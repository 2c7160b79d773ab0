"""The control-plane binaries: which versions, where they are cached, how they are built.

This module owns the recipe that turns Go modules from the module proxy into the
executables the local control plane runs (kube-apiserver, kube-controller-manager,
kube-scheduler, kubectl, etcd, kwok) and that its tests run (helm, krew). Nothing is
downloaded except through the `go` command, and nothing is written into the repository:
every build happens in a generated wrapper module inside the cache directory.

Why a wrapper module: `go install k8s.io/kubernetes/cmd/...@v1.36.3` is refused because
the kubernetes go.mod `replace`s its staging modules (k8s.io/api, client-go, ...) with
local directories and requires them at `v0.0.0`. A wrapper that requires the module and
`replace`s each of those staging modules with its published `v0.Y.Z` tag builds the
same code.

It must not start processes other than `go`; running the binaries is `cluster`'s job.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.22.0"
# The newest the module proxy serves: its version list names only v0.4.3, v0.4.4 comes
# when asked by name, v0.4.5 is refused (403, "not available"). A cold build: ≈ 22 s.
KREW_VERSION = "v0.4.4"

# Written next to the binaries; records which version each binary was built from, so
# bumping one of the versions above rebuilds only that group.
MANIFEST_NAME = "versions.json"

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class GoBuild:
    """One `go build` in one generated wrapper module, producing one or more binaries."""

    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    # Replace every staging module (required at v0.0.0 upstream) with this tag.
    staging_tag: str | None = None
    # runc needs cgo for libseccomp; everything else is static.
    cgo: bool = False
    tags: tuple[str, ...] = ()
    # More `replace`s, as (path, target): a module version (`other/path v1.2.3`) or a
    # folder (`./name`) that `prepare` writes into the wrapper's folder first.
    redirects: tuple[tuple[str, str], ...] = ()
    prepare: Callable[[Path], None] | None = None

    @property
    def stamp(self) -> str:
        return f"{self.module}@{self.version}"


def _kubernetes_ldflags(version: str) -> tuple[str, ...]:
    # Same variables as kubernetes' hack/lib/version.sh sets, in both places that
    # report a version: component-base (servers, `/version`) and client-go (kubectl).
    major, minor = version.lstrip("v").split(".")[:2]
    build_date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flags: list[str] = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={build_date}",
        ]
    return tuple(flags)


# What `cluster` runs; helm (the chart tests) and krew (the plugin manifest's) are not
# needed to start.
CLUSTER_BUILDS = ("kubernetes", "etcd", "kwok")


def cluster_builds() -> tuple[GoBuild, ...]:
    """The builds `cluster` needs to start (not helm's or krew's)."""
    return tuple(build for build in builds() if build.name in CLUSTER_BUILDS)


def builds() -> tuple[GoBuild, ...]:
    """Every build the control plane needs, in the order they run."""
    staging_tag = "v0." + KUBERNETES_VERSION.lstrip("v").split(".", 1)[1]
    return (
        GoBuild(
            name="kubernetes",
            module="k8s.io/kubernetes",
            version=KUBERNETES_VERSION,
            packages=tuple(
                f"k8s.io/kubernetes/cmd/{cmd}"
                for cmd in (
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                    "kubectl",
                )
            ),
            binaries=("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
            ldflags=_kubernetes_ldflags(KUBERNETES_VERSION),
            staging_tag=staging_tag,
        ),
        # etcd's server module has `package main` at its root (main.go calls
        # etcdmain.Main), so it builds directly; its own `replace ../api` lines do not
        # apply to a dependency, and the versions it requires are all published.
        GoBuild(
            name="etcd",
            module="go.etcd.io/etcd/server/v3",
            version=ETCD_VERSION,
            packages=("go.etcd.io/etcd/server/v3",),
            binaries=("etcd",),
        ),
        GoBuild(
            name="kwok",
            module="sigs.k8s.io/kwok",
            version=KWOK_VERSION,
            packages=("sigs.k8s.io/kwok/cmd/kwok",),
            binaries=("kwok",),
        ),
        GoBuild(
            name="helm",
            module="helm.sh/helm/v3",
            version=HELM_VERSION,
            packages=("helm.sh/helm/v3/cmd/helm",),
            binaries=("helm",),
            ldflags=(f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",),
        ),
        # krew and the krew index's own manifest check, for manifests/krew/pitstop.yaml.
        # No version is stamped in: krew asks GitHub for a newer release (on 40 % of
        # runs) unless it is a development build, and this machine reaches no GitHub.
        GoBuild(
            name="krew",
            module="sigs.k8s.io/krew",
            version=KREW_VERSION,
            packages=("sigs.k8s.io/krew/cmd/krew", "sigs.k8s.io/krew/cmd/validate-krew-manifest"),
            binaries=("krew", "validate-krew-manifest"),
        ),
    )


def cache_root() -> Path:
    """`$PITSTOP_CACHE`, else `~/.cache/pitstop`."""
    configured = os.environ.get("PITSTOP_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "pitstop"


def cache_dir() -> Path:
    """Directory for this set of versions: binaries in `bin/`, wrapper modules in `build/`."""
    return cache_root() / f"k8s-{KUBERNETES_VERSION}"


def bin_dir() -> Path:
    return cache_dir() / "bin"


# --- go.mod handling (pure) -------------------------------------------------------------

_REQUIRE_BLOCK = re.compile(r"^require\s*\((.*?)^\)", re.MULTILINE | re.DOTALL)
_REQUIRE_LINE = re.compile(r"^require\s+(\S+)\s+(\S+)", re.MULTILINE)
_GO_DIRECTIVE = re.compile(r"^go\s+(\S+)\s*$", re.MULTILINE)
_EXCLUDE_BLOCK = re.compile(r"^exclude\s*\((.*?)^\)", re.MULTILINE | re.DOTALL)
_EXCLUDE_LINE = re.compile(r"^exclude\s+([^\s(]\S*)\s+(\S+)", re.MULTILINE)


def parse_requires(gomod: str) -> dict[str, str]:
    """Module path -> version for every `require` of a go.mod (block and single-line)."""
    requires: dict[str, str] = {}
    for block in _REQUIRE_BLOCK.findall(gomod):
        for line in block.splitlines():
            fields = line.split("//", 1)[0].split()
            if len(fields) >= 2:
                requires[fields[0]] = fields[1]
    for path, version in _REQUIRE_LINE.findall(gomod):
        if path != "(":
            requires[path] = version
    return requires


def parse_go_version(gomod: str) -> str | None:
    match = _GO_DIRECTIVE.search(gomod)
    return match.group(1) if match else None


def parse_excludes(gomod: str) -> list[tuple[str, str]]:
    """(module, version) of every `exclude` of a go.mod (block and single-line)."""
    excludes: list[tuple[str, str]] = []
    for block in _EXCLUDE_BLOCK.findall(gomod):
        for line in block.splitlines():
            fields = line.split("//", 1)[0].split()
            if len(fields) >= 2:
                excludes.append((fields[0], fields[1]))
    excludes += _EXCLUDE_LINE.findall(gomod)
    return excludes


def staging_modules(gomod: str) -> list[str]:
    """Modules required at the placeholder version `v0.0.0`, i.e. kubernetes' staging repos.

    Pseudo-versions such as `v0.0.0-20250730193827-2d320260d730` are real releases and
    are left alone.
    """
    return sorted(path for path, version in parse_requires(gomod).items() if version == "v0.0.0")


def wrapper_gomod(
    *,
    module: str,
    go_version: str,
    requires: Mapping[str, str],
    replaces: Mapping[str, str],
    excludes: Sequence[tuple[str, str]] = (),
    redirects: Sequence[tuple[str, str]] = (),
) -> str:
    """The text of a wrapper go.mod requiring `requires` with `replaces` pinned to tags
    and each of `redirects` replaced by its target (another module, or a folder)."""
    lines = [f"module {module}", "", f"go {go_version}", ""]
    if requires:
        lines.append("require (")
        lines += [f"\t{path} {version}" for path, version in sorted(requires.items())]
        lines += [")", ""]
    if replaces or redirects:
        lines.append("replace (")
        lines += [f"\t{path} => {path} {tag}" for path, tag in sorted(replaces.items())]
        lines += [f"\t{path} => {target}" for path, target in redirects]
        lines += [")", ""]
    if excludes:
        lines.append("exclude (")
        lines += [f"\t{path} {version}" for path, version in excludes]
        lines += [")", ""]
    return "\n".join(lines)


def wrapper_gomod_for(build: GoBuild, upstream_gomod: str) -> str:
    """The wrapper go.mod for one build, given the text of the upstream module's go.mod."""
    replaces: dict[str, str] = {}
    if build.staging_tag is not None:
        replaces = dict.fromkeys(staging_modules(upstream_gomod), build.staging_tag)
    return wrapper_gomod(
        module=f"pitstop.dev/devcluster/build/{build.name}",
        go_version=parse_go_version(upstream_gomod) or "1.26.0",
        requires={build.module: build.version},
        replaces=replaces,
        # `exclude` applies only in the main module, which is why `go install` refuses
        # a module that has some (BuildKit); the wrapper carries them over.
        excludes=parse_excludes(upstream_gomod),
        redirects=build.redirects,
    )


# --- building (I/O) ------------------------------------------------------------------------


def go_env() -> dict[str, str]:
    """Environment for every `go` call: Go's own caches stay at their defaults."""
    env = dict(os.environ)
    env.update(
        {
            "CGO_ENABLED": "0",
            # -mod=mod lets `go build` fill in go.sum for the generated wrapper.
            "GOFLAGS": "-mod=mod -buildvcs=false",
            # Never fetch a different toolchain: the machine's Go is the one we use.
            "GOTOOLCHAIN": "local",
        }
    )
    return env


def read_manifest(directory: Path) -> dict[str, str]:
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def missing_builds(directory: Path, wanted: Iterable[GoBuild]) -> list[GoBuild]:
    """Builds whose binaries are absent, or were built from another version."""
    manifest = read_manifest(directory)
    return [
        build
        for build in wanted
        if any(
            not (directory / binary).is_file() or manifest.get(binary) != build.stamp
            for binary in build.binaries
        )
    ]


def download(module: str, version: str) -> dict[str, str]:
    """`go mod download -json` of one module version: its `Dir` (the unpacked source, in
    Go's module cache) and `GoMod` (its go.mod file)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        env=go_env(),
        timeout=600,
        check=False,
    )
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Error" in info:
        raise RuntimeError(f"go mod download {module}@{version}: {info.get('Error', done.stderr)}")
    return {str(k): str(v) for k, v in info.items()}


def _download_gomod(build: GoBuild) -> str:
    return Path(download(build.module, build.version)["GoMod"]).read_text()


def run_build(build: GoBuild, directory: Path, log: Log) -> float:
    """Build one group into `directory`; return the seconds it took."""
    env = go_env()
    if build.cgo:
        env["CGO_ENABLED"] = "1"
    work = cache_dir() / "build" / build.name
    work.mkdir(parents=True, exist_ok=True)
    gomod = wrapper_gomod_for(build, _download_gomod(build))
    (work / "go.mod").write_text(gomod)
    if build.prepare is not None:
        build.prepare(work)

    # `-o DIR/` with several packages writes one binary per package; with one package
    # the output name is given explicitly (etcd's package path ends in `/v3`). A binary
    # named `sub/name` goes into a subfolder (the CNI plugins: `bridge` must not shadow
    # iproute2's command on a PATH that holds our bin dir).
    first = directory / build.binaries[0]
    first.parent.mkdir(parents=True, exist_ok=True)
    output = f"{first.parent}/" if len(build.packages) > 1 else str(first)
    # Niced: the machine is shared, and a cold build holds both cores for minutes.
    command: list[str] = ["nice", "-n", "10", "go", "build", "-trimpath", "-o", output]
    if build.tags:
        command += ["-tags", ",".join(build.tags)]
    command += ["-ldflags", " ".join(("-s", "-w", *build.ldflags))]
    command += build.packages
    log(f"building {build.stamp} -> {', '.join(build.binaries)}")
    started = time.monotonic()
    with (work / "build.log").open("a") as build_log:
        build_log.write(f"$ {' '.join(command)}\n")
        build_log.flush()
        result = subprocess.run(command, cwd=work, env=env, stdout=build_log, stderr=build_log)
        elapsed = time.monotonic() - started
        build_log.write(f"exit {result.returncode} after {elapsed:.0f}s\n")
    if result.returncode != 0:
        tail = (work / "build.log").read_text().splitlines()[-30:]
        raise RuntimeError(f"go build of {build.stamp} failed:\n" + "\n".join(tail))
    log(f"built {build.stamp} in {elapsed:.0f}s")
    return elapsed


def build_jobs() -> int:
    """How many `go build`s run at once: `$PITSTOP_BUILD_JOBS`, else 1.

    One, because a second did not help on the 2 cores measured: a cold build of the
    control plane's and the node's binaries took 16 min 8 s one at a time and 17 min
    17 s two at a time (Go's build cache and the binaries cache empty, the module cache
    warm). One `go build` already keeps both cores busy (190 % of a core over the whole
    build); two compete, and compile the packages their modules share twice (11 % more
    CPU). On more cores, where one build leaves cores idle (its linker runs on one),
    more may pay: set it and measure."""
    configured = os.environ.get("PITSTOP_BUILD_JOBS", "1")
    if not configured.isdigit() or int(configured) < 1:
        raise ValueError(f"PITSTOP_BUILD_JOBS={configured!r}: a whole number of at least 1")
    return int(configured)


def _build_after(ahead: Future[float] | None, build: GoBuild, directory: Path, log: Log) -> float:
    # No deadlock: the pool starts builds in order, so `ahead` already runs on another
    # worker when this one starts.
    if ahead is not None:
        wait([ahead])
    return run_build(build, directory, log)


def ensure_binaries(
    *,
    force: bool = False,
    log: Log = lambda _: None,
    only: Sequence[str] = (),
    catalog: Sequence[GoBuild] | None = None,
) -> Path:
    """Return the bin dir, building whatever binaries are absent (all, with `force`).

    `catalog` replaces the control plane's builds (the real node's are added to them:
    `nodebinaries.ensure`). The builds run `build_jobs()` at a time, in the catalog's
    order, except that two builds of one module run one after the other (the control
    plane's Kubernetes binaries and the node's: the second finds the packages they
    share compiled in Go's build cache, ≈ 1.5 min instead of ≈ 9). Each build's binaries
    are recorded as soon as it is done, so a failed build costs only itself next time."""
    directory = bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    wanted = [b for b in (builds() if catalog is None else catalog) if not only or b.name in only]
    if not force and not missing_builds(directory, wanted):
        return directory
    # Two `pitstop dev up`s (or a test session and a developer) may race to build;
    # the lock makes the second wait and then find the binaries present.
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        todo = wanted if force else missing_builds(directory, wanted)
        failures: list[BaseException] = []
        with ThreadPoolExecutor(build_jobs(), thread_name_prefix="go-build") as pool:
            running: dict[Future[float], GoBuild] = {}
            latest: dict[str, Future[float]] = {}  # module -> its build submitted last
            for build in todo:
                future = pool.submit(_build_after, latest.get(build.module), build, directory, log)
                latest[build.module], running[future] = future, build
            for done in as_completed(running):
                error = done.exception()
                if error is not None:
                    failures.append(error)
                    continue
                built = running[done]
                manifest = read_manifest(directory)
                manifest.update(dict.fromkeys(built.binaries, built.stamp))
                (directory / MANIFEST_NAME).write_text(
                    json.dumps(manifest, indent=2, sort_keys=True)
                )
        if failures:
            raise failures[0]
    return directory
