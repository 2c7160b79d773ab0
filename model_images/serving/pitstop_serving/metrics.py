"""Prometheus metrics, all prefixed `pitstop_`, in a registry of their own.

The operator's builtin metric provider scrapes these per pod, so the names are part
of the contract (see model_images/README.md). Label children used on the hot path are
bound once and cached; drift scores are computed by a collector at scrape time, not
per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# `*_created` series double the exposition for nothing the operator reads.
disable_created_metrics()  # type: ignore[no-untyped-call]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DriftCollector(Collector):
    def __init__(self, scores: Callable[[], tuple[dict[str, float], int]]) -> None:
        self._scores = scores

    def collect(self) -> Iterator[GaugeMetricFamily]:
        scores, rows = self._scores()
        per_feature = GaugeMetricFamily(
            "pitstop_drift_psi",
            "PSI of recent inputs against the training profile, per feature",
            labels=["feature"],
        )
        for feature, score in scores.items():
            per_feature.add_metric([feature], score)
        yield per_feature
        yield GaugeMetricFamily(
            "pitstop_drift_psi_max",
            "Largest per-feature PSI over the drift window",
            value=max(scores.values(), default=0.0),
        )
        yield GaugeMetricFamily(
            "pitstop_drift_window_rows", "Rows in the drift window", value=float(rows)
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "pitstop_requests", "Requests by endpoint and status code", ["endpoint", "code"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "pitstop_request_duration_seconds", "Time to answer, by endpoint", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rows = Counter("pitstop_predicted_rows", "Rows predicted", registry=r)
        self.validation_failures = Counter(
            "pitstop_validation_failures", "Rejected request fields, by field", ["field"],
            registry=r,
        )  # fmt: skip
        self.output_failures = Counter(
            "pitstop_output_validation_failures", "Model outputs refused, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.ready = Gauge("pitstop_model_ready", "1 once the model is loaded", registry=r)
        self.info = Gauge(
            "pitstop_model_info", "The package being served", ["name", "version", "digest"],
            registry=r,
        )  # fmt: skip
        self.classes = Counter(
            "pitstop_predictions", "Predicted rows by class", ["class"], registry=r
        )
        self.values = Histogram(
            "pitstop_prediction_value", "Predicted values (regression models)",
            buckets=(-1e3, -1e2, -10, -1, 0, 1, 10, 1e2, 1e3), registry=r,
        )  # fmt: skip
        self.shadow = Counter(
            "pitstop_shadow_requests", "Mirrored requests by outcome (agree, disagree, error)",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.shadow_latency = Histogram(
            "pitstop_shadow_duration_seconds", "Shadow model's answer time",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.shadow_dropped = Counter(
            "pitstop_shadow_dropped", "Mirror copies dropped because the queue was full",
            registry=r,
        )  # fmt: skip
        for outcome in ("agree", "disagree", "error"):
            self.shadow.labels(outcome)
        self._requests: dict[tuple[str, int], Any] = {}
        self._latency: dict[str, Any] = {}
        self._classes: dict[Any, Any] = {}

    def add_drift(self, scores: Callable[[], tuple[dict[str, float], int]]) -> None:
        self.registry.register(DriftCollector(scores))

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        child = self._requests.get((endpoint, code))
        if child is None:
            child = self._requests[endpoint, code] = self.requests.labels(endpoint, str(code))
        child.inc()
        hist = self._latency.get(endpoint)
        if hist is None:
            hist = self._latency[endpoint] = self.latency.labels(endpoint)
        hist.observe(seconds)

    def predicted(self, labels: list[Any]) -> None:
        self.rows.inc(len(labels))
        for label in labels:
            child = self._classes.get(label)
            if child is None:
                child = self._classes[label] = self.classes.labels(str(label))
            child.inc()

    def regressed(self, values: list[float]) -> None:
        self.rows.inc(len(values))
        for value in values:
            self.values.observe(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
