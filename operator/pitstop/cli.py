"""The `pitstop` command: one entry point that gathers each area's subcommands.

Each area owns its own click commands (`devcluster.cli`, `packaging.cli`, ...); this
module only assembles them and adds the operator's own two: `run` and `crd`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

import click

from pitstop import gates, view
from pitstop.archive import cli as archive_cli
from pitstop.devcluster import cli as devcluster_cli
from pitstop.packaging import cli as packaging_cli


@click.group()
def main() -> None:
    """Pitstop: package, build, roll out and roll back ML models on Kubernetes."""


@main.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only these namespaces (repeatable). Default: the whole cluster.",
)
@click.option("--liveness", default="http://0.0.0.0:8080/healthz", show_default=True)
@click.option(
    "--metrics-address",
    default="0.0.0.0:8081",
    show_default=True,
    envvar="PITSTOP_METRICS_ADDRESS",
    help="host:port to serve the operator's Prometheus metrics on (/metrics); empty: none.",
)
@click.option(
    "--max-concurrent-reconciles",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    envvar="PITSTOP_MAX_CONCURRENT_RECONCILES",
    help="How many ModelDeployments are reconciled at once (one at a time each).",
)
@click.option(
    "--api-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    envvar="PITSTOP_API_TIMEOUT",
    help="Seconds any call to the Kubernetes API may take.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    envvar="PITSTOP_LEADER_ELECT",
    help="Run as one of several replicas: only the holder of a Lease acts, the others "
    "stand by and take over when it goes.",
)
@click.option("--lease-name", default="pitstop-operator", show_default=True,
              envvar="PITSTOP_LEASE_NAME", help="The Lease of the leader election.")  # fmt: skip
@click.option(
    "--lease-namespace",
    envvar="POD_NAMESPACE",
    help="Where the Lease is. Default: the pod's namespace ($POD_NAMESPACE), else the "
    "kubeconfig's.",
)
@click.option(
    "--identity",
    envvar="POD_NAME",
    help="This replica's name in the Lease and on its Events. Default: $POD_NAME, else "
    "host-pid. Two running replicas must never share it.",
)
@click.option("--lease-duration", type=click.IntRange(min=1), default=15, show_default=True,
              envvar="PITSTOP_LEASE_DURATION",
              help="Seconds a standby waits, after the Lease last moved, to take it.")  # fmt: skip
@click.option("--renew-deadline", type=float, default=10.0, show_default=True,
              envvar="PITSTOP_RENEW_DEADLINE",
              help="Seconds the leader keeps acting without a renewal; under the lease "
              "duration, so it stops before anyone may take over.")  # fmt: skip
@click.option("--retry-period", type=float, default=2.0, show_default=True,
              envvar="PITSTOP_RETRY_PERIOD", help="Seconds between tries to take or renew.")  # fmt: skip
@click.option("--notify-url", default="", envvar="PITSTOP_NOTIFY_URL",
              help="A webhook told of every ModelDeployment's rollout transitions "
              "(besides each one's spec.notify).")  # fmt: skip
@click.option("--notify-format", type=click.Choice(["JSON", "Slack"]), default="JSON",
              show_default=True, envvar="PITSTOP_NOTIFY_FORMAT",
              help="Body of --notify-url's messages.")  # fmt: skip
def run(
    namespaces: tuple[str, ...],
    liveness: str,
    metrics_address: str,
    notify_url: str,
    notify_format: str,
    max_concurrent_reconciles: int,
    api_timeout: float,
    leader_elect: bool,
    lease_name: str,
    lease_namespace: str | None,
    identity: str | None,
    lease_duration: int,
    renew_deadline: float,
    retry_period: float,
) -> None:
    """Run the operator (uses the in-cluster service account or $KUBECONFIG)."""
    import kopf

    from pitstop import handlers  # registers the handlers
    from pitstop.k8s import client
    from pitstop.leadership import LeaseSettings
    from pitstop.notify.sender import Target

    name = identity or f"{socket.gethostname()}-{os.getpid()}"
    lease = None
    if leader_elect:
        try:
            lease = LeaseSettings(
                name=lease_name,
                namespace=lease_namespace or client.current_namespace(),
                identity=name,
                duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
            )
        except ValueError as error:
            raise click.UsageError(str(error)) from error
    metrics = None
    if metrics_address:
        host, _, port = metrics_address.rpartition(":")
        if not port.isdigit():
            raise click.UsageError(f"--metrics-address {metrics_address!r}: expected host:port")
        metrics = (host or "0.0.0.0", int(port))
    options = handlers.Options(
        max_concurrent=max_concurrent_reconciles,
        api_timeout=api_timeout,
        identity=name,
        lease=lease,
        metrics=metrics,
        notify=Target(notify_url, notify_format) if notify_url else None,
    )
    kopf.configure(verbose=False)  # INFO-level logs on stderr, as kubectl logs shows them
    # Kopf says "Handler 'child_changed' succeeded." at INFO for every watch event: with
    # a fleet, thousands of lines a minute that say nothing (pitstop.* logs each change
    # a reconcile decides), and a twentieth of the operator's CPU coming up. Its
    # warnings and errors (a handler that failed) still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=liveness or None,
            memo=kopf.Memo(options=options),
        )
    )


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def crd(paths: tuple[Path, ...]) -> None:
    """Write the ModelDeployment CRD, generated from the API models.

    PATHS are directories (the file is named after the CRD) or files; with none, the
    CRD is printed.
    """
    from pitstop.api import crd as crd_module

    text = crd_module.render()
    if not paths:
        click.echo(text, nl=False)
    for path in paths:
        target = path / crd_module.FILENAME if path.is_dir() else path
        target.write_text(text)
        click.echo(f"wrote {target}", err=True)


main.add_command(view.status)
main.add_command(archive_cli.history)
for command in gates.COMMANDS:
    main.add_command(command)
main.add_command(devcluster_cli.dev)
main.add_command(packaging_cli.package)


@click.group(name="kubectl pitstop")
def kubectl_plugin() -> None:
    """Watch and steer ModelDeployments' rollouts (a kubectl plugin: `kubectl pitstop`).

    kubectl runs this `kubectl-pitstop` when it is on PATH (pip puts it beside
    `pitstop`); it reads the same kubeconfig ($KUBECONFIG, else ~/.kube/config).
    """


kubectl_plugin.add_command(view.status)
kubectl_plugin.add_command(archive_cli.history)
for command in gates.COMMANDS:
    kubectl_plugin.add_command(command)
