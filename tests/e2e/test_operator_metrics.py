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

import pytest
from harness import deployment, gateway, models
from operator_metrics import Sample, samples, total
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10m"}]}}
ANALYSIS = {"metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}]}


def scrape(operator: OperatorProcess) -> list[Sample]:
    return samples(operator.metrics_url)


def test_a_judged_rollback_shows_in_the_operators_metrics(
    md: deployment.Deployment, gateway_for: Start, operator: OperatorProcess
) -> None:
    md.apply(models.GOOD, CANARY, analysis=ANALYSIS)
    gateway_for(rps=20)
    md.healthy(models.GOOD)
    healthy = scrape(operator)
    assert total(healthy, "pitstop_modeldeployments", phase="Healthy") == 1
    md.apply(models.FLAKY, CANARY, analysis=ANALYSIS)

    def judged() -> list[Sample] | None:
        found = scrape(operator)
        live = total(found, "pitstop_analysis_verdict", name="fraud", metric="error-rate")
        return found if live == 1 else None

    during = md.cluster.wait("the judge's view of error-rate on /metrics", judged)
    at = {"namespace": md.namespace, "name": "fraud", "metric": "error-rate"}
    assert total(during, "pitstop_analysis_limit", kind="max", **at) == 0.05
    assert total(during, "pitstop_analysis_value", role="candidate", **at) >= 0
    assert total(during, "pitstop_modeldeployments", phase="Progressing") == 1

    status: dict[str, Any] = md.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    assert "error-rate" in status["message"]

    def after_rollback() -> list[Sample] | None:
        found = scrape(operator)
        done = total(found, "pitstop_modeldeployments", phase="RolledBack") == 1
        return found if done else None

    after = md.cluster.wait("RolledBack counted on /metrics", after_rollback)
    ended = total(after, "pitstop_rollouts_ended_total", strategy="Canary",
                  outcome="RolledBack", metric="error-rate")  # fmt: skip
    assert ended == 1
    assert total(after, "pitstop_rollouts_started_total", strategy="Canary") >= 1
    assert total(after, "pitstop_rollback_seconds_count") == 1
    assert 0 < total(after, "pitstop_rollback_seconds_sum") < 60
    # The judge's per-metric series go with the analysis: bounded by what is analysed.
    assert total(after, "pitstop_analysis_verdict", name="fraud") == 0
    assert total(after, "pitstop_reconciles_total", result="success") > 0
    assert total(after, "pitstop_reconcile_duration_seconds_count") > 0
    assert total(after, "pitstop_workqueue_wait_seconds_count") > 0
    assert total(after, "pitstop_api_requests_total", verb="PATCH", code="200") > 0
    assert total(after, "pitstop_api_requests_total", code="403") == 0  # the chart's RBAC
    assert total(after, "pitstop_api_request_duration_seconds_count", verb="PATCH",
                 resource="modeldeployments/status") > 0  # fmt: skip
    assert ("pitstop_workqueue_depth", {}) in [(n, ls) for n, ls, _ in after]
