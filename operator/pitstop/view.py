"""`pitstop status NAME [--watch]`: a ModelDeployment's rollout at a glance.

Renders only what the API holds (status), so it shows the same truth as
`kubectl get md -o yaml`, laid out for a person: revisions, step, traffic, the last
analysis with each metric's estimate, interval and verdict against its limit (and
how many more requests an inconclusive one needs), conditions, the history, and the
last manual requests (who asked what, when, why, and whether it was done).
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
        title = "analysis" + (f" ({analysis['generated']:,} generated requests)"
                              if analysis.get("generated") else "")  # fmt: skip
        table = Table("metric", "candidate", "stable", "interval", "limit", "requests",
                      "verdict", title=title, title_justify="left")  # fmt: skip
        for m in analysis["metrics"]:
            verdict = Text(m.get("verdict", ""), style=VERDICT_STYLE.get(m.get("verdict", ""), ""))
            if m.get("verdict") == "Inconclusive" and m.get("needs") is not None:
                verdict.append(f" (needs ~{m['needs']:,} more)", style="dim")
            table.add_row(m["name"], _number(m.get("value")), _number(m.get("stableValue")),
                          _interval(m.get("lower"), m.get("upper")), m.get("limit", ""),
                          _number(m.get("requests")), verdict)  # fmt: skip
        parts.append(table)
    history = status.get("history") or []
    if history:
        table = Table(
            "revision", "version", "outcome", "reason", title="history", title_justify="left"
        )
        for h in history[-6:]:
            table.add_row(h["revision"], h["version"], h.get("outcome", ""), h.get("reason", ""))
        parts.append(table)
    asked = _requests(status)
    if asked:
        table = Table("when", "request", "by", "reason", "result", title="manual requests",
                      title_justify="left")  # fmt: skip
        for revision, q in asked[-REQUESTS_SHOWN:]:
            result = q.get("result", "")
            shown = Text(result, style="green" if result == "Done" else "yellow")
            if q.get("message"):
                shown.append(f" ({q['message']})", style="dim")
            table.add_row(q.get("at", ""), f"{q['action']} {revision}".strip(), q.get("by", ""),
                          q.get("reason", ""), shown)  # fmt: skip
        parts.append(table)
    return Group(*parts)


REQUESTS_SHOWN = 5


def _requests(status: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded request with the revision it concerns, oldest first."""
    found = [(h["revision"], q) for h in status.get("history") or []
             for q in h.get("requests") or []]  # fmt: skip
    candidate = status.get("candidate") or {}
    found += [(candidate["revision"], q) for q in candidate.get("requests") or []]
    return sorted(found, key=lambda item: str(item[1].get("at") or ""))


def _revision(r: dict[str, Any]) -> str:
    return f"v{r['version']} ({r['revision']})" if r else "-"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _interval(lower: Any, upper: Any) -> str:
    """Where the judge puts the quantity (relative limits: the difference or ratio)."""
    if lower is None and upper is None:
        return "-"
    low = "..." if lower is None else f"{lower:.3g}"
    high = "..." if upper is None else f"{upper:.3g}"
    return f"[{low}, {high}]"


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
