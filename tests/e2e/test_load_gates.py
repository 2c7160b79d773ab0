"""Load and stress tests as release gates (issue 16, item 3), end to end: the operator
loads the candidate's real model servers before any user reaches it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import deployment, gateway, models

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "30s"}]}}


def stopped(md: deployment.Deployment, version: str) -> dict[str, Any]:
    return md.until(f"v{version} stopped", lambda s: any(
        h["version"] == version and h.get("outcome") == "Aborted" for h in s.get("history", [])
    ), timeout=180)  # fmt: skip


def degraded(status: dict[str, Any]) -> str:
    found = [c for c in status.get("conditions", []) if c["type"] == "Degraded"]
    return str(found[0]["message"]) if found else ""


def test_a_candidate_3x_slower_than_its_load_test_limit_is_stopped_before_any_user(
    md: deployment.Deployment, gateway_for: Start
) -> None:
    # SLOW takes 200 ms a call, about 3x the 70 ms p99 the load test allows.
    checks = {"loadTest": {"requestsPerSecond": 4, "concurrency": 4, "duration": "5s",
                           "maxP99": "70ms"}}  # fmt: skip
    md.apply(models.PACED, CANARY, analysis=checks)
    load = gateway_for()
    md.healthy(models.PACED, timeout=120)  # the first revision passes its own load test
    md.apply(models.SLOW, CANARY, analysis=checks)
    status = stopped(md, models.SLOW)

    assert status["stable"]["version"] == models.PACED
    assert "load test" in degraded(status)
    assert "p99 above 70ms" in degraded(status)
    assert not load.answered(version=models.SLOW)  # no user ever reached it


def test_a_stress_test_records_the_candidates_capacity_and_stops_one_too_slow_for_the_stable(
    md: deployment.Deployment, gateway_for: Start
) -> None:
    # A limit far above PACED's calls (its p99 at 20/s is tens of ms on an idle machine,
    # 0.23-0.30 s on a busy one) and far below what SLOW queues to: the verdicts say
    # what each model can carry, not how fast the machine is today.
    stress = {"stressTest": {"maxP99": "1s", "startRate": 20, "factor": 1.25, "step": "3s",
                             "maxRate": 400}}  # fmt: skip
    md.apply(models.GOOD, CANARY)
    load = gateway_for(rps=20)
    md.healthy(models.GOOD)
    # PACED (10 ms a call) carries the stable's 20/s on one pod: it is measured and goes on.
    md.apply(models.PACED, CANARY, analysis=stress)
    going = md.until("the candidate takes traffic", lambda s: (s.get("candidate") or {})
                     .get("state") == "Canary", timeout=240)  # fmt: skip
    measured = going["analysis"]["stress"]
    assert measured["passed"]
    assert measured["capacity"] > 20 * 1.2
    assert measured["stableRate"] == pytest.approx(20, rel=0.3)
    assert measured["p99"] <= 1.0

    # SLOW (200 ms a call) sustains about 5/s: it could not carry the stable's 20/s.
    md.apply(models.SLOW, CANARY, analysis={**stress, "stressTest": {
        **stress["stressTest"], "startRate": 2}})  # fmt: skip
    status = stopped(md, models.SLOW)
    assert "stress test" in degraded(status)
    assert "the stable serves" in degraded(status)
    assert not load.answered(version=models.SLOW)
