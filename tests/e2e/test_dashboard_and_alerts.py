"""The chart's dashboard and alerts against a real Prometheus (issue 13): while a real
canary is judged and rolled back by the operator (on the chart's ServiceAccount),
Prometheus scrapes it and the model servers; every query of the dashboard parses and
returns series, every alert rule evaluates cleanly, and the rollback alert fires for
this ModelDeployment."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import local_http
import pytest
from harness import deployment, gateway, listing, models, prometheus
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

FILES = Path(__file__).resolve().parents[2] / "charts" / "pitstop" / "files"
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10m"}]}}
ANALYSIS = {"metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}]}


def dashboard_queries(namespace: str, name: str) -> list[str]:
    """Every target expression of the dashboard, its variables filled in as Grafana does."""
    board = json.loads((FILES / "dashboard.json").read_text())
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    found += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return [
        q.replace("$namespace", namespace).replace("$name", name).replace("$__rate_interval", "15s")
        for q in found
    ]


def series(server: prometheus.Prometheus, query: str) -> int:
    """How many series `query` returns now (label_values(): how many values)."""
    if query.startswith("label_values("):
        inner = query.removeprefix("label_values(").rsplit(",", 1)[0]
        return len(server.query(f"count by (namespace) ({inner})"))
    return len(server.query(query))


def test_every_dashboard_query_returns_data_and_the_rollback_alert_fires(
    cluster: testing.DevCluster, md: deployment.Deployment, gateway_for: Start,
    operator: OperatorProcess, namespace_listing: listing.Listing, tmp_path: Path,
) -> None:  # fmt: skip
    queries = dashboard_queries(md.namespace, "fraud")
    answered: set[str] = set()
    server = prometheus.Prometheus(
        cluster, md.namespace, tmp_path / "prometheus",
        operator_metrics=operator.metrics_url, rule_files=[FILES / "alerts.yaml"],
        listing=namespace_listing,
    )  # fmt: skip
    with server:

        def look() -> None:
            for q in queries:
                if q not in answered and series(server, q) > 0:  # raises if it does not parse
                    answered.add(q)

        md.apply(models.GOOD, CANARY, analysis=ANALYSIS)
        gateway_for(rps=20)
        md.healthy(models.GOOD)
        md.apply(models.FLAKY, CANARY, analysis=ANALYSIS)

        def judging() -> bool:
            look()
            return bool(server.query('pitstop_analysis_verdict{name="fraud"}'))

        md.cluster.wait("the judge's series scraped during the canary", judging, interval=0.5)
        md.until("rolled back", lambda s: (look(), s.get("phase") == "RolledBack")[1])

        def alerted() -> list[dict[str, Any]]:
            look()
            alerts = server.get("/api/v1/alerts")["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "PitstopModelRolledBack"
                    and a["labels"].get("name") == "fraud" and a["state"] == "firing"]  # fmt: skip

        (alert,) = md.cluster.wait("PitstopModelRolledBack firing", alerted)
        assert alert["labels"]["namespace"] == md.namespace
        with contextlib.suppress(AssertionError):  # the assertion below names the queries
            md.cluster.wait("every dashboard query answered",
                            lambda: (look(), answered == set(queries))[1], timeout=60)  # fmt: skip
        assert sorted(set(queries) - answered) == []

        rules = [r for g in server.get("/api/v1/rules")["groups"] for r in g["rules"]]
        assert len(rules) == 10
        broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert broken == []
        # Nothing else fires: the operator is up, reconciles succeed, nothing is refused.
        firing = {a["labels"]["alertname"] for a in server.get("/api/v1/alerts")["alerts"]}
        assert firing == {"PitstopModelRolledBack"}
        assert local_http.get(operator.metrics_url, timeout=5).status_code == 200


Start = Callable[..., gateway.Gateway]
