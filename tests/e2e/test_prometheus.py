"""The prometheus metric provider, end to end (issue 6): a real Prometheus scrapes the
real model servers of every Ready pod (targets kept in sync with the API, as its
Kubernetes service discovery would), and the operator judges a canary by a PromQL
query templated with the revision. A candidate answering 20% errors is rolled back;
a good one passes the same query and is promoted."""

from __future__ import annotations

from typing import Any

import pytest
from harness import deployment, gateway, models, prometheus
from pitstop.devcluster import testing

pytestmark = pytest.mark.e2e

SELECTOR = (
    'namespace="{{namespace}}",model_deployment="{{name}}",revision="{{revision}}",'
    'endpoint="predict"'
)
# The serving template creates a code's series at its first request: a revision without
# errors has no 5xx series, so the numerator falls back to 0 (`or vector(0)`); without
# traffic the denominator is empty and so is the answer (inconclusive, not a pass).
ERROR_RATE = (
    "(sum(rate(pitstop_requests_total{" + SELECTOR + ',code=~"5.."}[{{interval}}]))'
    " or vector(0))"
    " / sum(rate(pitstop_requests_total{" + SELECTOR + "}[{{interval}}]))"
)
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10s"}]}}


def analysis(address: str) -> dict[str, Any]:
    metric = {"name": "error-rate", "prometheus": {"address": address, "query": ERROR_RATE},
              "max": 0.05}  # fmt: skip
    return {"interval": "5s", "failureLimit": 1, "minRequests": 20, "metrics": [metric]}


def series(server: prometheus.Prometheus, namespace: str, revision: str, code: str) -> float:
    """Requests of `revision` with `code`, as Prometheus scraped them (0 if none); the
    highest count of the last 5 minutes, so that it holds after the pods went."""
    found = server.query(
        f'sum(max_over_time(pitstop_requests_total{{namespace="{namespace}",'
        f'revision="{revision}",endpoint="predict",code="{code}"}}[5m]))'
    )
    return float(found[0]["value"][1]) if found else 0.0


def error_rate(status: dict[str, Any], revision: str) -> dict[str, Any]:
    """The last measurement of `revision` by the query ({} if none yet)."""
    measured = status.get("analysis") or {}
    if measured.get("revision") != revision:
        return {}
    found = [m for m in measured.get("metrics") or [] if m["name"] == "error-rate"]
    return dict(found[0]) if found else {}


def test_prometheus_query_rolls_back_a_flaky_candidate_and_promotes_a_good_one(
    md: deployment.Deployment,
    gateway_for: Any,
    prometheus_server: prometheus.Prometheus,
    cluster: testing.DevCluster,
) -> None:
    checks = analysis(prometheus_server.url)
    ns = md.namespace
    md.apply(models.GOOD, CANARY, analysis=checks)
    load: gateway.Gateway = gateway_for()
    md.healthy(models.GOOD)
    v1 = md.revision(models.GOOD)
    # Discovered and scraped: the stable's answers are in Prometheus, by revision label.
    cluster.wait(
        "Prometheus has v1's answers",
        lambda: series(prometheus_server, ns, v1, "200") >= 20,
        timeout=60,
    )

    md.apply(models.FLAKY, CANARY, analysis=checks)
    status = md.until("rolled back", lambda s: s.get("phase") == "RolledBack", timeout=120)
    bad = status["rejectedRevision"]
    degraded = [c for c in status.get("conditions", []) if c["type"] == "Degraded"]
    assert degraded
    assert degraded[0]["status"] == "True"
    assert "error-rate" in degraded[0]["message"]
    assert "max 0.05" in degraded[0]["message"]
    assert status["stable"]["revision"] == v1
    assert status["history"][-1]["outcome"] == "RolledBack"
    # The failing value came from the query: about the 20% the candidate answered.
    judged = error_rate(status, bad)
    assert judged["verdict"] == "Fail"
    assert 0.1 <= judged["value"] <= 0.4
    assert series(prometheus_server, ns, bad, "500") > 0
    cluster.wait("no traffic to the rejected revision", lambda: load.share_now(models.FLAKY) == 0)

    md.apply(models.BETTER, CANARY, analysis=checks)

    def better(s: dict[str, Any]) -> dict[str, Any]:
        """BETTER's revision entry: the candidate, or the stable once already promoted
        (on a busy machine a poll may miss the short window between the two)."""
        for role in ("candidate", "stable"):
            if (s.get(role) or {}).get("version") == models.BETTER:
                found: dict[str, Any] = s[role]
                return found
        return {}

    passing = md.until(
        "the candidate passes the query",
        lambda s: bool(better(s)) and error_rate(s, better(s)["revision"]).get("verdict") == "Pass",
        timeout=120,
    )
    judged = error_rate(passing, better(passing)["revision"])
    assert judged["value"] == 0.0  # a number from Prometheus, not an empty answer
    done = md.healthy(models.BETTER, timeout=120)
    assert [(h["version"], h["outcome"]) for h in done["history"]][-1] == (
        models.BETTER,
        "Promoted",
    )
    v2 = done["stable"]["revision"]
    assert series(prometheus_server, ns, v2, "200") > 0
    assert series(prometheus_server, ns, v2, "500") == 0
    assert all(r.status == 200 for r in load.answered(version=models.BETTER))


# Counts over {{interval}}: judged sequentially, like the builtin metrics (issue 11).
ERRORS = (
    "(sum(increase(pitstop_requests_total{"
    + SELECTOR
    + ',code=~"5.."}[{{interval}}])) or vector(0))'
)
ANSWERS = "sum(increase(pitstop_requests_total{" + SELECTOR + "}[{{interval}}]))"


def test_prometheus_counts_are_judged_sequentially(
    md: deployment.Deployment,
    gateway_for: Any,
    prometheus_server: prometheus.Prometheus,
) -> None:
    metric = {"name": "error-rate", "max": 0.05, "prometheus": {
        "address": prometheus_server.url, "numerator": ERRORS, "denominator": ANSWERS}}  # fmt: skip
    checks = {"interval": "5s", "minRequests": 20, "metrics": [metric]}
    md.apply(models.GOOD, CANARY, analysis=checks)
    gateway_for()
    md.healthy(models.GOOD)
    md.apply(models.FLAKY, CANARY, analysis=checks)
    status = md.until("rolled back", lambda s: s.get("phase") == "RolledBack", timeout=120)
    judged = error_rate(status, status["rejectedRevision"])
    assert judged["verdict"] == "Fail"
    assert 0.1 <= judged["value"] <= 0.4
    # Counts accumulated over the intervals, with an interval at the analysis' confidence.
    assert judged["requests"] >= 20
    assert judged["lower"] > 0.05
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert "confident" in degraded["message"]
