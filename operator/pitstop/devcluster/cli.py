"""`pitstop dev build | up | down | env | status`: the local control plane from a shell.

A thin layer over `binaries` and `cluster`: it parses options, reports progress on
stderr (so `eval $(pitstop dev env)` only ever sees shell code on stdout) and turns
failures into a non-zero exit.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from pitstop.devcluster import binaries, buildimages, cluster, nodebinaries


def default_state_dir() -> Path:
    """`.dev/cluster` at the repository root (found from the package), else under cwd."""
    repo = Path(__file__).resolve().parents[3]
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return base / ".dev" / "cluster"


def _progress(message: str) -> None:
    click.echo(message, err=True)


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PITSTOP_DEV_STATE",
    default=default_state_dir,
    show_default=".dev/cluster",
    help="Where the cluster's certificates, data, logs and pids live.",
)


node_option = click.option(
    "--node",
    type=click.Choice(cluster.NODE_KINDS),
    default="kwok",
    show_default=True,
    help="kwok: fake nodes, pods Running without containers (fast, no root). real: one "
    "real node on this host — containerd, kubelet, kube-proxy, CNI, CoreDNS, a registry "
    "and BuildKit (needs root; changes host networking until `down`).",
)


@click.group()
def dev() -> None:
    """A local control plane (real apiserver, controllers and scheduler; KWOK or a real node)."""


@dev.command()
@click.option("--force", is_flag=True, help="Rebuild even when the binaries are present.")
@node_option
def build(force: bool, node: str) -> None:
    """Build the control-plane binaries (and a real node's) into the cache, once."""
    started = time.monotonic()
    if node == "real":
        bin_dir = nodebinaries.ensure(_progress, control_plane=binaries.builds(), force=force)
    else:
        bin_dir = binaries.ensure_binaries(force=force, log=_progress)
    _progress(f"binaries ready in {time.monotonic() - started:.0f}s")
    click.echo(str(bin_dir))


@dev.command()
@state_dir_option
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for ready.")
@click.option(
    "--pod-cidr",
    default=cluster.DEFAULT_POD_CIDR,
    show_default=True,
    help="Pod IPs come from here, one /20 per node. Loopback by default so a harness can "
    "serve on them; a non-loopback range gives Services EndpointSlices instead. "
    "Ignored with --node real (its pods get 10.244.0.0/24 on the node's bridge).",
)
@node_option
def up(state_dir: Path, timeout: float, pod_cidr: str, node: str) -> None:
    """Start the cluster, or report the one already running."""
    started = time.monotonic()
    try:
        info = cluster.Cluster(state_dir, pod_cidr=pod_cidr, log=_progress, node=node).up(
            timeout=timeout
        )
    except cluster.ClusterError as error:
        raise click.ClickException(str(error)) from error
    _progress(f"up in {time.monotonic() - started:.0f}s")
    click.echo(f"server:     {info.server}")
    click.echo(f"kubeconfig: {info.kubeconfig}")
    click.echo(f"binaries:   {info.bin_dir}")
    if info.registry:
        click.echo(f"registry:   {info.registry} (plain HTTP)")
    click.echo("use it:     eval $(pitstop dev env)")


@dev.command("build-images")
@state_dir_option
def build_images(state_dir: Path) -> None:
    """Build a build Job's images on the running real node and push them to its registry:
    the operator's (operator/Dockerfile), a rootless BuildKit and a kaniko executor."""
    info = cluster.Cluster(state_dir).info()
    if info is None or info.node != "real":
        raise click.ClickException("no real node runs here: `pitstop dev up --node real`")
    repository = Path(__file__).resolve().parents[3]
    operator_ref = buildimages.operator_image(info.bin_dir, repository, _progress)
    buildkit_ref = buildimages.buildkit_image(info.bin_dir, _progress)
    kaniko_ref = buildimages.kaniko_image(info.bin_dir, _progress)
    click.echo(f"PITSTOP_OPERATOR_IMAGE={operator_ref}")
    click.echo(f"PITSTOP_BUILDKIT_IMAGE={buildkit_ref}")
    click.echo(f"PITSTOP_KANIKO_IMAGE={kaniko_ref}")
    name = operator_ref.split("@", 1)[0]
    click.echo(
        f"helm: --set image.repository={name},image.tag=dev,build.buildkitImage={buildkit_ref}"
        f",build.kanikoImage={kaniko_ref}"
    )


@dev.command()
@state_dir_option
def down(state_dir: Path) -> None:
    """Stop every process of the cluster; leaves no process and no port behind."""
    started = time.monotonic()
    try:
        cluster.Cluster(state_dir, log=_progress).down()
    except cluster.ClusterError as error:
        raise click.ClickException(str(error)) from error
    _progress(f"cluster down in {time.monotonic() - started:.1f}s")


@dev.command()
@state_dir_option
def env(state_dir: Path) -> None:
    """Print `export` lines for KUBECONFIG and PATH: `eval $(pitstop dev env)`."""
    click.echo(cluster.Cluster(state_dir).env(), nl=False)


@dev.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Say which components run, and where."""
    the_cluster = cluster.Cluster(state_dir)
    info = the_cluster.info()
    if info is None:
        click.echo("not running")
        raise SystemExit(1)
    running = the_cluster.status()
    for proc in info.processes:
        state = "running" if running.get(proc.name) else "STOPPED"
        click.echo(f"{proc.name:24} {state:8} pid {proc.pid:<8} log {proc.log}")
    healthy = the_cluster.healthy(info)
    click.echo(f"server {info.server}: {'ready' if healthy else 'NOT ready'}")
    click.echo(f"kubeconfig {info.kubeconfig}")
    if not healthy:
        raise SystemExit(1)
