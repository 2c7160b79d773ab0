"""Alerts, dashboard and the model servers' PodMonitor: off by default, and when on,
exactly the files the tests check (alerts: tests/unit/alerts; queries: the e2e)."""

from __future__ import annotations

import json

import yaml
from chart import CHART, render

FILES = CHART / "files"


def test_nothing_that_needs_other_crds_by_default() -> None:
    kinds = {o["kind"] for o in render()}
    assert not kinds & {"PrometheusRule", "PodMonitor", "ServiceMonitor"}
    assert all(
        "dashboard" not in o["metadata"]["name"] for o in render() if o["kind"] == "ConfigMap"
    )


def test_when_asked_the_chart_ships_the_tested_files_verbatim() -> None:
    objects = render("--set", "alerts.enabled=true", "--set", "alerts.labels.release=prom",
                     "--set", "dashboard.enabled=true", "--set", "metrics.podMonitor.enabled=true",
                     "--set", "watchNamespaces={ml}")  # fmt: skip
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load((FILES / "alerts.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "prom"
    (dashboard,) = [
        o for o in objects if o["kind"] == "ConfigMap" and "dashboard" in o["metadata"]["name"]
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["pitstop.json"])
    assert shipped == json.loads((FILES / "dashboard.json").read_text())
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    targets = {r["targetLabel"] for r in monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert {"revision", "model_deployment"} <= targets


def test_the_pod_monitor_presents_a_scrape_key_when_given_one() -> None:
    """Models with `serving.auth` answer /metrics only with a key: the PodMonitor sends
    the scrape-only one it is given, and nothing when it is given none."""

    def endpoint(*values: str) -> dict[str, object]:
        objects = render("--set", "metrics.podMonitor.enabled=true", *values)
        (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
        found: dict[str, object] = monitor["spec"]["podMetricsEndpoints"][0]
        return found

    assert "authorization" not in endpoint()
    given = endpoint("--set", "metrics.podMonitor.scrapeKeySecret.name=model-scrape",
                     "--set", "metrics.podMonitor.scrapeKeySecret.key=token")  # fmt: skip
    assert given["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "model-scrape", "key": "token"},
    }
