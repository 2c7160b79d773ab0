"""`pitstop history NAME`: every revision a ModelDeployment served, from its archive
(which outlives it) and its status (what serves now)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pitstop.api.status import ModelDeploymentStatus
from pitstop.archive import records, store
from pitstop.archive.records import Record
from pitstop.k8s import client, errors


def gather(kube: client.KubeClient, namespace: str, name: str) -> list[Record]:
    """Archived records, then the revisions serving now (not ended: no outcome yet
    beyond Promoted), oldest first."""
    try:
        found = store.held(kube.read_config_map(namespace, records.name_of(name)), name)
    except errors.Forbidden as refused:
        # Without read access to ConfigMaps, what the status still holds is shown.
        click.echo(f"warning: {refused}: the archive is not shown, only the status history",
                   err=True)  # fmt: skip
        found = []
    obj = kube.get_model_deployment(namespace, name)
    if obj is not None:
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
        model = ((obj.get("spec") or {}).get("model") or {}).get("name", "")
        archived = {r.key for r in found}
        serving = [records.record(namespace, name, model, e, (status.analysis,))
                   for e in status.history if e.ended_at is None]  # fmt: skip
        found += [r for r in serving if r.key not in archived]
    return found


def _when(record: Record) -> str:
    start = record.started_at.strftime("%Y-%m-%d %H:%M") if record.started_at else "?"
    end = record.ended_at.strftime("%Y-%m-%d %H:%M") if record.ended_at else "now"
    return f"{start} - {end}"


def _asked(record: Record) -> str:
    return "; ".join(
        f"{r.get('action')} by {r.get('by', '?')}"
        + (f" ({r['reason']})" if r.get("reason") else "")
        for r in record.requests
    )


@click.command()
@click.argument("name")
@click.option("--namespace", "-n", default=None, help="Namespace (default: the context's).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def history(name: str, namespace: str | None, as_json: bool) -> None:
    """Every revision NAME served: version, image, package, when, how it ended and why,
    the last analysis figures and who asked what. Works after NAME is deleted."""
    kube = client.connect()
    namespace = namespace or client.current_namespace()
    found = gather(kube, namespace, name)
    if as_json:
        body: list[dict[str, Any]] = [
            r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in found
        ]
        click.echo(json.dumps(body, indent=2))
        return
    if not found:
        raise click.ClickException(f"no history of ModelDeployment {namespace}/{name}")
    table = Table("revision", "version", "served", "outcome", "reason", "analysis", "requests",
                  title=f"{namespace}/{name}", title_justify="left")  # fmt: skip
    for r in found:
        figures = ", ".join(
            f"{f.name} {f.verdict}" + (f" {f.value:.4g}" if f.value is not None else "")
            for f in r.analysis
        )
        table.add_row(r.revision, r.version, _when(r), r.outcome or "", r.reason, figures,
                      _asked(r))  # fmt: skip
    Console().print(table)
