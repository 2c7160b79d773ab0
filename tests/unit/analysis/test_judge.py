"""The sequential judge as a specification: what each metric concludes from evidence.

Every case feeds looks of both revisions (what they served since the previous look)
and reads the verdict. Random traffic is seeded.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pitstop.analysis import judge
from pitstop.analysis.judge import Counts, Look
from pitstop.analysis.threshold import Measurement
from pitstop.analysis.window import Window
from pitstop.api.spec import AnalysisSpec
from pitstop.api.status import AnalysisStatus

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BUCKETS = [0.001 * 2 ** (i / 8) for i in range(-20, 120)]


def spec(*metrics: dict[str, Any], **settings: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"metrics": list(metrics), **settings})


def served(rng: np.random.Generator, rps: float, error: float, slow: float = 1.0,
           shift: float = 0.0) -> Window:  # fmt: skip
    """One second of a revision's traffic: Poisson arrivals, random errors, lognormal
    latencies (median 5 ms x slow), one feature ~ N(shift, 1) in decile bins."""
    n = int(rng.poisson(rps))
    times = rng.lognormal(math.log(0.005 * slow), 0.4, size=n)
    edges = np.searchsorted(BUCKETS, times)
    latency: dict[float, float] = {}
    for i in edges:
        bound = BUCKETS[min(i, len(BUCKETS) - 1)]
        latency[bound] = latency.get(bound, 0.0) + 1
    deciles = [-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816]
    bins = np.bincount(np.searchsorted(deciles, rng.normal(shift, 1, size=n)), minlength=10)
    return Window(
        requests=n, errors=float(rng.binomial(n, error)), latency=latency,
        bins={"x": tuple(float(b) for b in bins)}, expected={"x": (0.1,) * 10},
    )  # fmt: skip


def run(analysis: AnalysisSpec, looks: int, candidate: dict[str, float],
        stable: dict[str, float] | None = None, seed: int = 0) -> AnalysisStatus:  # fmt: skip
    rng = np.random.default_rng(seed)
    status = judge.evaluate(analysis, None, "cand", NOW)
    for i in range(looks):
        look = Look(served(rng, **candidate), served(rng, **(stable or candidate)))
        status = judge.evaluate(analysis, status, "cand", NOW + timedelta(seconds=i + 1), look)
        if status.verdict != "Inconclusive":
            break
    return status


ERRORS_MAX = {"name": "errors", "builtin": "errorRate", "max": 0.05}
ERRORS_ABOVE = {"name": "errors", "builtin": "errorRate", "maxAboveStable": 0.01}
ERRORS_RATIO = {"name": "errors", "builtin": "errorRate", "maxRatioToStable": 2}
P99_RATIO = {"name": "p99", "builtin": "latencyP99", "maxRatioToStable": 1.5}
P99_MAX = {"name": "p99", "builtin": "latencyP99", "max": 0.05}
DRIFT = {"name": "drift", "builtin": "drift", "max": 0.2}


@pytest.mark.parametrize(
    ("metric", "candidate", "stable", "verdict"),
    [
        (ERRORS_MAX, {"rps": 10, "error": 0.3}, None, "Fail"),
        (ERRORS_MAX, {"rps": 50, "error": 0.0}, None, "Pass"),
        (ERRORS_ABOVE, {"rps": 20, "error": 0.2}, {"rps": 20, "error": 0.01}, "Fail"),
        (ERRORS_ABOVE, {"rps": 100, "error": 0.01}, None, "Pass"),
        (ERRORS_RATIO, {"rps": 50, "error": 0.2}, {"rps": 50, "error": 0.02}, "Fail"),
        (P99_RATIO, {"rps": 20, "error": 0, "slow": 3}, {"rps": 20, "error": 0}, "Fail"),
        (P99_RATIO, {"rps": 100, "error": 0}, None, "Pass"),
        (P99_MAX, {"rps": 20, "error": 0, "slow": 20}, None, "Fail"),
        (DRIFT, {"rps": 20, "error": 0, "shift": 3}, None, "Fail"),
        (DRIFT, {"rps": 100, "error": 0}, None, "Pass"),
    ],
)  # fmt: skip
def test_metric_verdicts(
    metric: dict[str, Any], candidate: dict[str, float], stable: dict[str, float] | None,
    verdict: str,
) -> None:  # fmt: skip
    status = run(spec(metric, minRequests=20), 600, candidate, stable)
    assert status.verdict == verdict, status.message
    assert status.metrics[0].verdict == verdict


def test_a_fail_names_the_metric_and_says_it_is_confident() -> None:
    status = run(spec(ERRORS_MAX), 60, {"rps": 10, "error": 0.5})
    assert status.verdict == "Fail"
    assert "errors" in status.message
    assert "confident" in status.message


def test_an_identical_candidate_is_not_failed_and_says_what_it_still_needs() -> None:
    status = run(spec(ERRORS_ABOVE), 20, {"rps": 5, "error": 0.01})
    assert status.verdict == "Inconclusive"
    result = status.metrics[0]
    assert result.needs is not None
    assert result.needs > 0
    assert f"needs about {result.needs:,} more requests" in status.message
    assert result.lower is None or result.lower <= 0.01


def test_an_absolute_limit_is_a_one_sided_test() -> None:
    """9 errors in 45 answers break `max: 0.05` at 99 % (a one-sided test); the two-sided
    confidence sequence needs 10 in 50 (the rollback benchmark's flaky model)."""
    analysis = spec(ERRORS_MAX)
    status = judge.evaluate(analysis, None, "cand", NOW)
    look = Look(Window(requests=45, errors=9), Window(requests=45, errors=0))
    status = judge.evaluate(analysis, status, "cand", NOW + timedelta(seconds=1), look)
    assert status.verdict == "Fail", status.message
    # The interval shown agrees with the verdict: the broken limit lies below it.
    lower = status.metrics[0].lower
    assert lower is not None
    assert lower > 0.05


def test_the_next_look_is_due_when_the_closest_metric_can_settle() -> None:
    analysis = spec(ERRORS_MAX, P99_MAX)
    status = judge.evaluate(analysis, None, "cand", NOW)
    look = Look(Window(requests=46, errors=9, latency={0.01: 46}), None)
    status = judge.evaluate(analysis, status, "cand", NOW + timedelta(seconds=1), look)
    needs = [m.needs or 0 for m in status.metrics if m.verdict == "Inconclusive"]
    assert len(needs) == 2
    assert all(needs)
    assert judge.seconds_to_verdict(status, 10.0) == min(needs) / 10.0
    assert judge.seconds_to_verdict(status, None) is None
    assert judge.seconds_to_verdict(status, 0.0) is None
    assert judge.seconds_to_verdict(None, 10.0) is None


def test_min_requests_holds_a_pass_but_not_a_fail() -> None:
    good = run(spec(ERRORS_MAX, minRequests=10_000), 100, {"rps": 50, "error": 0.0})
    assert good.verdict == "Inconclusive"
    assert good.metrics[0].needs == 10_000 - good.metrics[0].requests
    bad = run(spec(ERRORS_MAX, minRequests=10_000), 60, {"rps": 10, "error": 0.5})
    assert bad.verdict == "Fail"


def test_evidence_carries_over_looks_and_starts_again_for_a_new_revision() -> None:
    rng = np.random.default_rng(1)
    analysis = spec(ERRORS_ABOVE)
    first = judge.evaluate(
        analysis, None, "cand", NOW, Look(served(rng, 10, 0.0), served(rng, 10, 0.0))
    )
    second = judge.evaluate(
        analysis, first, "cand", NOW, Look(served(rng, 10, 0.0), served(rng, 10, 0.0))
    )
    assert second.metrics[0].requests == pytest.approx(
        first.metrics[0].requests + (second.metrics[0].requests - first.metrics[0].requests)
    )
    assert second.metrics[0].requests > first.metrics[0].requests
    other = judge.evaluate(analysis, second, "other", NOW)
    assert other.metrics[0].requests is None or other.metrics[0].requests == 0


def test_no_new_evidence_keeps_the_last_check() -> None:
    rng = np.random.default_rng(2)
    analysis = spec(ERRORS_MAX)
    first = judge.evaluate(analysis, None, "cand", NOW, Look(served(rng, 10, 0.0)))
    later = judge.evaluate(analysis, first, "cand", NOW + timedelta(seconds=5))
    assert later.last_check == first.last_check
    assert later.metrics == first.metrics


def test_confidence_is_split_over_sequential_metrics_only() -> None:
    analysis = spec(ERRORS_MAX, P99_MAX, {"name": "hook", "webhook": {"url": "http://x"}},
                    confidence=0.98)  # fmt: skip
    assert judge.alpha_per_metric(analysis) == pytest.approx(0.01)


def test_value_metrics_count_failures_against_the_failure_limit() -> None:
    analysis = spec({"name": "q", "prometheus": {"query": "x"}, "max": 1}, failureLimit=1)
    bad = [Measurement("q", 5.0, requests=None)]
    first = judge.evaluate(analysis, None, "cand", NOW, values=bad)
    assert (first.failures, first.verdict) == (1, "Inconclusive")
    second = judge.evaluate(analysis, first, "cand", NOW, values=bad)
    assert (second.failures, second.verdict) == (2, "Fail")
    assert "q 5 > max 1" in second.message


def test_promql_counts_are_judged_like_a_builtin_error_rate() -> None:
    analysis = spec({"name": "q", "prometheus": {"numerator": "bad", "denominator": "all"},
                     "max": 0.01})  # fmt: skip
    status = judge.evaluate(analysis, None, "cand", NOW)
    for _ in range(20):
        status = judge.evaluate(analysis, status, "cand", NOW, counts={"q": Counts(30, 100)})
    assert status.verdict == "Fail"
    broken = judge.evaluate(analysis, None, "cand", NOW, counts={"q": Counts(error="timeout")})
    assert broken.verdict == "Inconclusive"
    assert "timeout" in broken.message


def test_an_unsettled_p99_says_about_how_many_more_requests_it_needs() -> None:
    status = run(spec(P99_RATIO), 10, {"rps": 20, "error": 0})
    result = status.metrics[0]
    assert result.verdict == "Inconclusive"
    assert result.upper is None  # 200 answers cannot bound a p99 yet ...
    assert result.needs is not None
    assert result.needs > result.requests  # ... and it says so
    later = run(spec(P99_RATIO), 150, {"rps": 20, "error": 0})
    if later.verdict == "Inconclusive":
        assert later.metrics[0].upper is not None
