"""A pod's counters (from /evidence or, for old images, /metrics) and what one revision
served between two looks: deltas, restarts, new pods."""

from __future__ import annotations

import math

import pytest
from pitstop.analysis import samples, window
from pitstop.analysis.samples import PodCounters

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
# TYPE pitstop_shadow_requests_total counter
pitstop_shadow_requests_total{outcome="agree"} 80
pitstop_shadow_requests_total{outcome="disagree"} 15
pitstop_shadow_requests_total{outcome="error"} 5
"""

EVIDENCE = {
    "version": 1,
    "instance": "a1",
    "predict": {
        "requests": 105,
        "errors": 10,
        "latency": {"schema": 3, "counts": {"-64": 50, "-56": 55}},
    },
    "drift": {"rows": 4, "features": {"x": {"expected": [0.5, 0.5], "counts": [3, 1]}}},
    "shadow": {"agree": 80, "disagree": 15, "error": 5},
}


def test_metrics_reads_predict_traffic_only_and_unstacks_buckets() -> None:
    pod = samples.parse_metrics(EXPOSITION)
    assert (pod.requests, pod.errors) == (105, 10)
    assert pod.latency == {0.01: 50, 0.1: 50, math.inf: 5}
    assert (pod.agree, pod.disagree, pod.shadow_errors) == (80, 15, 5)


def test_evidence_reads_exponential_buckets_and_drift_bins() -> None:
    pod = samples.parse_evidence(EVIDENCE)
    assert (pod.instance, pod.requests, pod.errors) == ("a1", 105, 10)
    # Schema 3: bucket i ends at 2 ** (i / 8) seconds; -64 is 2^-8 s, -56 is 2^-7 s.
    assert pod.latency == {2**-8: 50, 2**-7: 55}
    assert samples.bucket_bound(8, 3) == 2.0
    assert pod.bins == {"x": (3, 1)}
    assert pod.expected == {"x": (0.5, 0.5)}
    assert (pod.agree, pod.disagree, pod.shadow_errors) == (80, 15, 5)


def test_evidence_of_todays_images_has_schema_5_buckets() -> None:
    body = {**EVIDENCE, "predict": {"latency": {"schema": 5, "counts": {"-256": 50, "-255": 5}}}}
    pod = samples.parse_evidence(body)
    # Schema 5: bucket i ends at 2 ** (i / 32) seconds.
    assert pod.latency == {2**-8: 50, 2 ** (-255 / 32): 5}
    assert samples.bucket_bound(32) == 2.0


def test_evidence_of_another_schema_is_refused() -> None:
    body = {**EVIDENCE, "predict": {"latency": {"schema": 4, "counts": {}}}}
    with pytest.raises(ValueError, match="schema"):
        samples.parse_evidence(body)


def counters(
    requests: float, errors: float = 0, agree: float = 0, instance: str | None = "i"
) -> PodCounters:
    return PodCounters(instance=instance, requests=requests, errors=errors,
                       latency={0.1: requests}, agree=agree)  # fmt: skip


def test_deltas_sum_over_pods() -> None:
    before = {"a": counters(100, 1), "b": counters(50, 0)}
    after = {"a": counters(160, 7), "b": counters(90, 0)}
    w = window.between(before, after)
    assert (w.requests, w.errors, w.pods) == (100, 6, 2)
    assert w.latency == {0.1: 100}


def test_a_pod_seen_for_the_first_time_is_only_a_baseline() -> None:
    """What it served before cannot be placed in this interval."""
    w = window.between({"a": counters(100)}, {"a": counters(110), "new": counters(5000, 900)})
    assert (w.requests, w.errors, w.pods) == (10, 0, 1)


def test_a_restarted_server_counts_from_zero() -> None:
    by_counter = window.between({"a": counters(100, 5)}, {"a": counters(20, 1)})
    assert (by_counter.requests, by_counter.errors) == (20, 1)
    by_instance = window.between({"a": counters(100, 5)}, {"a": counters(130, 6, instance="j")})
    assert (by_instance.requests, by_instance.errors) == (130, 6)


def test_drift_bins_add_up_per_feature() -> None:
    old = PodCounters(bins={"x": (1, 1)}, expected={"x": (0.5, 0.5)})
    new = PodCounters(bins={"x": (4, 2)}, expected={"x": (0.5, 0.5)})
    w = window.between({"a": old, "b": old}, {"a": new, "b": new})
    assert w.bins == {"x": (6, 2)}
    assert w.expected == {"x": (0.5, 0.5)}


def test_compared_counts_shadow_errors_as_not_agreeing() -> None:
    w = window.between({"a": counters(0, agree=10)}, {"a": counters(0, agree=30)})
    assert (w.agree, w.compared) == (20, 20)
