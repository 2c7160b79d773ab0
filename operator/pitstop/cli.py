"""The `pitstop` command: one entry point that gathers each area's subcommands.

Each area owns its own click commands (`devcluster.cli`, `packaging.cli`, ...); this
module only assembles them, so adding an area never means editing another's code.
"""

from __future__ import annotations

import click

from pitstop.devcluster import cli as devcluster_cli
from pitstop.packaging import cli as packaging_cli


@click.group()
def main() -> None:
    """Pitstop: package, build, roll out and roll back ML models on Kubernetes."""


main.add_command(devcluster_cli.dev)
main.add_command(packaging_cli.package)
