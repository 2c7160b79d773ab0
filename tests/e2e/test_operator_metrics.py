"""The operator's own /metrics (issue 13), read from the running operator — on the chart's
ServiceAccount — while a real canary is judged and rolled back.

Reconciles, the work queue, API requests by verb and code, ModelDeployments by phase,
rollouts started and ended (with the metric the rollback was decided on), the time a
bad candidate kept serving once it showed, and the judge's live view per metric, which
goes when the analysis ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import deployment, gateway, models
from pitstop.devcluster.operator_process import OperatorProcess
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10m"}]}}
ANALYSIS = {"metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}]}


def scrape(operator: OperatorProcess) -> Samples:
    text = httpx.get(operator.metrics_url, timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, family: str, /, **labels: str) -> float:
    """The sum over the series of `family` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == family and wanted <= ls)


def test_a_judged_rollback_shows_in_the_operators_metrics(
    md: deployment.Deployment, gateway_for: Start, operator: OperatorProcess
) -> None:
    md.apply(models.GOOD, CANARY, analysis=ANALYSIS)
    gateway_for(rps=20)
    md.healthy(models.GOOD)
    healthy = scrape(operator)
    assert value(healthy, "pitstop_modeldeployments", phase="Healthy") == 1
    md.apply(models.FLAKY, CANARY, analysis=ANALYSIS)

    def judged() -> Samples | None:
        samples = scrape(operator)
        live = value(samples, "pitstop_analysis_verdict", name="fraud", metric="error-rate")
        return samples if live == 1 else None

    during = md.cluster.wait("the judge's view of error-rate on /metrics", judged)
    at = {"namespace": md.namespace, "name": "fraud", "metric": "error-rate"}
    assert value(during, "pitstop_analysis_limit", kind="max", **at) == 0.05
    assert value(during, "pitstop_analysis_value", role="candidate", **at) >= 0
    assert value(during, "pitstop_modeldeployments", phase="Progressing") == 1

    status: dict[str, Any] = md.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    assert "error-rate" in status["message"]

    def after_rollback() -> Samples | None:
        samples = scrape(operator)
        done = value(samples, "pitstop_modeldeployments", phase="RolledBack") == 1
        return samples if done else None

    after = md.cluster.wait("RolledBack counted on /metrics", after_rollback)
    ended = value(after, "pitstop_rollouts_ended_total", strategy="Canary",
                  outcome="RolledBack", metric="error-rate")  # fmt: skip
    assert ended == 1
    assert value(after, "pitstop_rollouts_started_total", strategy="Canary") >= 1
    assert value(after, "pitstop_rollback_seconds_count") == 1
    assert 0 < value(after, "pitstop_rollback_seconds_sum") < 60
    # The judge's per-metric series go with the analysis: bounded by what is analysed.
    assert value(after, "pitstop_analysis_verdict", name="fraud") == 0
    assert value(after, "pitstop_reconciles_total", result="success") > 0
    assert value(after, "pitstop_reconcile_duration_seconds_count") > 0
    assert value(after, "pitstop_workqueue_wait_seconds_count") > 0
    assert value(after, "pitstop_api_requests_total", verb="PATCH", code="200") > 0
    assert value(after, "pitstop_api_requests_total", code="403") == 0  # the chart's RBAC
    assert ("pitstop_workqueue_depth", frozenset()) in after
