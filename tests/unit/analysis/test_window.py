"""Interval numbers from two scrapes: deltas, counter resets, p99, agreement."""

from __future__ import annotations

import math

import pytest
from pitstop.analysis import samples, window
from pitstop.analysis.samples import PodCounters, Snapshot

EXPOSITION = """\
# TYPE pitstop_requests_total counter
pitstop_requests_total{endpoint="predict",code="200"} 90
pitstop_requests_total{endpoint="predict",code="500"} 10
pitstop_requests_total{endpoint="predict",code="422"} 5
pitstop_requests_total{endpoint="/metrics",code="200"} 7
# TYPE pitstop_request_duration_seconds histogram
pitstop_request_duration_seconds_bucket{endpoint="predict",le="0.01"} 50
pitstop_request_duration_seconds_bucket{endpoint="predict",le="0.1"} 100
pitstop_request_duration_seconds_bucket{endpoint="predict",le="+Inf"} 105
pitstop_request_duration_seconds_count{endpoint="predict"} 105
pitstop_request_duration_seconds_sum{endpoint="predict"} 2.0
# TYPE pitstop_drift_psi_max gauge
pitstop_drift_psi_max 0.12
# TYPE pitstop_shadow_requests_total counter
pitstop_shadow_requests_total{outcome="agree"} 80
pitstop_shadow_requests_total{outcome="disagree"} 15
pitstop_shadow_requests_total{outcome="error"} 5
"""


def test_parse_reads_predict_traffic_only() -> None:
    pod = samples.parse(EXPOSITION)
    assert (pod.requests, pod.errors) == (105, 10)
    assert pod.buckets == ((0.01, 50), (0.1, 100), (math.inf, 105))
    assert pod.drift == 0.12
    assert (pod.agree, pod.disagree, pod.shadow_errors) == (80, 15, 5)


def counters(requests: float, errors: float = 0, agree: float = 0) -> PodCounters:
    return PodCounters(requests=requests, errors=errors, buckets=((0.1, requests), (math.inf, requests)),
                       agree=agree)  # fmt: skip


def test_deltas_between_scrapes_sum_over_pods() -> None:
    before = Snapshot({"a": counters(100, 1), "b": counters(50, 0)})
    after = Snapshot({"a": counters(160, 7), "b": counters(90, 0)})
    w = window.between(before, after)
    assert (w.requests, w.errors) == (100, 6)
    assert window.error_rate(w) == pytest.approx(0.06)


def test_a_restarted_or_new_pod_counts_from_zero() -> None:
    before = Snapshot({"a": counters(500, 50)})
    after = Snapshot({"a": counters(20, 2), "c": counters(30, 3)})  # a restarted, c is new
    w = window.between(before, after)
    assert (w.requests, w.errors) == (50, 5)


def test_p99_interpolates_within_the_bucket_like_histogram_quantile() -> None:
    w = window.Window(100, 0, ((0.01, 50), (0.1, 100), (math.inf, 100)), None, 0, 0, 0)
    assert window.quantile(w, 0.5) == pytest.approx(0.01)
    assert window.quantile(w, 0.99) == pytest.approx(0.01 + 0.09 * 49 / 50)
    empty = window.Window(0, 0, ((0.1, 0), (math.inf, 0)), None, 0, 0, 0)
    assert window.quantile(empty, 0.99) is None


def test_agreement_counts_shadow_errors_as_disagreement() -> None:
    w = window.Window(0, 0, (), None, agree=85, disagree=10, shadow_errors=5)
    assert window.agreement(w) == pytest.approx(0.85)
    assert window.agreement(window.Window(0, 0, (), None, 0, 0, 0)) is None
