"""`pitstop dev build | up | down | env | status`: the local control plane from a shell.

A thin layer over `binaries` and `cluster`: it parses options, reports progress on
stderr (so `eval $(pitstop dev env)` only ever sees shell code on stdout) and turns
failures into a non-zero exit.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from pitstop.devcluster import binaries, cluster


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


@click.group()
def dev() -> None:
    """A local control plane (real apiserver, controllers and scheduler; KWOK nodes)."""


@dev.command()
@click.option("--force", is_flag=True, help="Rebuild even when the binaries are present.")
def build(force: bool) -> None:
    """Build the control-plane binaries into the cache (once; then reused)."""
    started = time.monotonic()
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
    "serve on them; a non-loopback range gives Services EndpointSlices instead.",
)
def up(state_dir: Path, timeout: float, pod_cidr: str) -> None:
    """Start the cluster, or report the one already running."""
    try:
        info = cluster.Cluster(state_dir, pod_cidr=pod_cidr, log=_progress).up(timeout=timeout)
    except cluster.ClusterError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"server:     {info.server}")
    click.echo(f"kubeconfig: {info.kubeconfig}")
    click.echo(f"binaries:   {info.bin_dir}")
    click.echo("use it:     eval $(pitstop dev env)")


@dev.command()
@state_dir_option
def down(state_dir: Path) -> None:
    """Stop every process of the cluster; leaves no process and no port behind."""
    started = time.monotonic()
    try:
        cluster.Cluster(state_dir).down()
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
