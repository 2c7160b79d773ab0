"""The fixed-threshold judge of value metrics: limits, inconclusive measurements, failureLimit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pitstop.analysis import threshold
from pitstop.analysis.threshold import Measurement
from pitstop.api.spec import AnalysisSpec, MetricSpec

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def metric(**limits: Any) -> MetricSpec:
    return MetricSpec.model_validate({"name": "m", "builtin": "errorRate", **limits})


@pytest.mark.parametrize(
    ("limits", "measured", "expected", "why"),
    [
        ({"max": 0.01}, Measurement("m", 0.005, requests=100), "Pass", ""),
        ({"max": 0.01}, Measurement("m", 0.2, requests=100), "Fail", "0.2 > max 0.01"),
        ({"min": 0.97}, Measurement("m", 0.85, requests=100), "Fail", "0.85 < min 0.97"),
        ({"max": 0.01}, Measurement("m", 0.2, requests=10), "Inconclusive", "10 requests < minRequests 50"),
        ({"max": 0.01}, Measurement("m", None, error="connection refused"), "Inconclusive", "connection refused"),
        ({"maxAboveStable": 0.005}, Measurement("m", 0.012, 0.01, requests=100), "Pass", ""),
        ({"maxAboveStable": 0.005}, Measurement("m", 0.02, 0.01, requests=100), "Fail", "> stable 0.01 + 0.005"),
        ({"maxRatioToStable": 1.2}, Measurement("m", 0.3, 0.1, requests=100), "Fail", "0.3 > 1.2 x stable 0.1"),
        ({"maxRatioToStable": 1.2}, Measurement("m", 0.3, None, requests=100), "Inconclusive", "no stable value"),
    ],
)  # fmt: skip
def test_judge(limits: dict[str, Any], measured: Measurement, expected: str, why: str) -> None:
    result, reason = threshold.judge(metric(**limits), measured, min_requests=50)
    assert result.verdict == expected
    assert why in reason


SPEC = AnalysisSpec.model_validate(
    {
        "interval": "5s",
        "failureLimit": 1,
        "metrics": [{"name": "m", "builtin": "errorRate", "max": 0.01}],
    }
)


def test_failures_count_up_to_the_limit_then_fail() -> None:
    bad = [Measurement("m", 0.2, requests=100)]
    first = threshold.evaluate(SPEC, None, "cand", bad, NOW)
    assert (first.failures, first.verdict) == (1, "Inconclusive")  # within failureLimit: hold
    second = threshold.evaluate(SPEC, first, "cand", bad, NOW + timedelta(seconds=5))
    assert (second.failures, second.verdict) == (2, "Fail")
    assert "m 0.2 > max 0.01" in second.message


def test_a_new_revision_starts_counting_again() -> None:
    failed = threshold.evaluate(SPEC, None, "old", [Measurement("m", 0.2, requests=100)], NOW)
    fresh = threshold.evaluate(SPEC, failed, "new", [Measurement("m", 0.0, requests=100)], NOW)
    assert (fresh.failures, fresh.verdict) == (0, "Pass")


def test_due_after_an_interval() -> None:
    done = threshold.evaluate(SPEC, None, "cand", [], NOW)
    assert not threshold.due(SPEC, done, "cand", NOW + timedelta(seconds=4))
    assert threshold.due(SPEC, done, "cand", NOW + timedelta(seconds=5))
    assert threshold.due(SPEC, done, "other", NOW)
    assert threshold.seconds_until_due(SPEC, done, NOW + timedelta(seconds=2)) == 3
