"""The `pitstop` command: one entry point that gathers each area's subcommands.

Each area owns its own click commands (`devcluster.cli`, `packaging.cli`, ...); this
module only assembles them and adds the operator's own two: `run` and `crd`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from pitstop import gates, view
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
def run(namespaces: tuple[str, ...], liveness: str) -> None:
    """Run the operator (uses the in-cluster service account or $KUBECONFIG)."""
    import kopf

    import pitstop.handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=False)  # INFO-level logs on stderr, as kubectl logs shows them
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=liveness or None,
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
for command in gates.COMMANDS:
    main.add_command(command)
main.add_command(devcluster_cli.dev)
main.add_command(packaging_cli.package)
