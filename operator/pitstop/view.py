"""`pitstop status NAME [--watch]`: a ModelDeployment's rollout at a glance.

Renders only what the API holds (status), so it shows the same truth as
`kubectl get md -o yaml`, laid out for a person: revisions, step, traffic, the last
analysis with each metric against its limit, conditions, and the history.
"""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from pitstop.k8s import client

VERDICT_STYLE = {"Pass": "green", "Fail": "bold red", "Inconclusive": "yellow"}


def render(obj: dict[str, Any]) -> Group:
    status = obj.get("status") or {}
    name = obj["metadata"]["name"]
    stable, candidate = status.get("stable") or {}, status.get("candidate") or {}
    head = Table.grid(padding=(0, 2))
    head.add_row(Text(f"{name}", style="bold"), Text(status.get("phase", "-"), style="bold cyan"),
                 Text(status.get("traffic", {}).get("summary", "")))  # fmt: skip
    head.add_row("stable", _revision(stable), "")
    if candidate:
        step = candidate.get("step")
        where = candidate.get("state", "") + (f" step {step + 1}" if step is not None else "")
        head.add_row("candidate", _revision(candidate), where)
    parts: list[Any] = [head, Text(status.get("message", ""), style="italic")]
    analysis = status.get("analysis") or {}
    if analysis.get("metrics"):
        table = Table("metric", "candidate", "stable", "limit", "verdict", title="analysis",
                      title_justify="left")  # fmt: skip
        for m in analysis["metrics"]:
            table.add_row(m["name"], _number(m.get("value")), _number(m.get("stableValue")),
                          m.get("limit", ""), Text(m.get("verdict", ""),
                                                   style=VERDICT_STYLE.get(m.get("verdict", ""), "")))  # fmt: skip
        parts.append(table)
    history = status.get("history") or []
    if history:
        table = Table(
            "revision", "version", "outcome", "reason", title="history", title_justify="left"
        )
        for h in history[-6:]:
            table.add_row(h["revision"], h["version"], h.get("outcome", ""), h.get("reason", ""))
        parts.append(table)
    return Group(*parts)


def _revision(r: dict[str, Any]) -> str:
    return f"v{r['version']} ({r['revision']})" if r else "-"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


@click.command()
@click.argument("name")
@click.option("--namespace", "-n", default=None, help="Namespace (default: the context's).")
@click.option("--watch", "-w", is_flag=True, help="Keep showing changes until interrupted.")
def status(name: str, namespace: str | None, watch: bool) -> None:
    """Show a ModelDeployment's rollout: revisions, traffic, analysis and history."""
    from rich.live import Live

    kube = client.connect()
    namespace = namespace or client.current_namespace()
    console = Console()

    def current() -> Group:
        obj = kube.get_model_deployment(namespace, name)
        if obj is None:
            raise click.ClickException(f"ModelDeployment {namespace}/{name} not found")
        return render(obj)

    if not watch:
        console.print(current())
        return
    with Live(current(), console=console, refresh_per_second=2) as live:
        while True:
            time.sleep(1)
            live.update(current())
