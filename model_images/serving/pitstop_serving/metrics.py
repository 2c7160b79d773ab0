"""Prometheus metrics, all prefixed `pitstop_`, in a registry of their own.

The operator's builtin metric provider scrapes these per pod, so the names are part
of the contract (see model_images/README.md).

The values are plain Python numbers, rendered by one prometheus-client collector at
scrape time. prometheus-client's own metric classes would cost more than the work
they count: BentoML sets `PROMETHEUS_MULTIPROC_DIR` in its workers, which turns every
`inc` and `observe` into a pid check and a write to a memory-mapped file (profiled:
7 % of a cheap prediction's CPU, and a third of a mirrored copy's). Every update here
happens on the worker's event loop thread (the load thread only sets the two
gauges), so no lock is needed. Drift scores are computed at scrape time too, not per
request.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from pitstop_serving import feedback

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
VALUE_BUCKETS = (-1e3, -1e2, -10, -1, 0, 1, 10, 1e2, 1e3)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Value:
    """One counter or gauge series."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


class Distribution:
    """One histogram series: per-bucket counts (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # `le` buckets: a value equal to a bound belongs to that bound's bucket.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class Family:
    """A metric's series by label values, created on first use."""

    def __init__(
        self,
        kind: str,
        name: str,
        documentation: str,
        labels: tuple[str, ...] = (),
        buckets: tuple[float, ...] = (),
    ) -> None:
        self.kind = kind
        self.name = name
        self.documentation = documentation
        self.label_names = labels
        self.buckets = buckets
        self.series: dict[tuple[str, ...], Any] = {}
        if not labels:
            self.labels()

    def labels(self, *values: str) -> Any:
        series = self.series.get(values)
        if series is None:
            if len(values) != len(self.label_names):
                raise ValueError(f"{self.name} takes labels {self.label_names}, not {values}")
            series = Distribution(self.buckets) if self.kind == "histogram" else Value()
            self.series[values] = series
        return series

    def inc(self, amount: float = 1.0) -> None:
        self.series[()].inc(amount)

    def set(self, value: float) -> None:
        self.series[()].set(value)

    def observe(self, value: float) -> None:
        self.series[()].observe(value)

    def render(self) -> Metric:
        labels = list(self.label_names)
        if self.kind != "histogram":
            kind = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
            family = kind(self.name, self.documentation, labels=labels)
            for values, series in self.series.items():
                family.add_metric(list(values), series.value)
            return family
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=labels)
        bounds = [floatToGoString(b) for b in (*self.buckets, math.inf)]
        for values, series in self.series.items():
            cumulative, total = [], 0
            for bound, count in zip(bounds, series.counts, strict=True):
                total += count
                cumulative.append((bound, float(total)))
            histogram.add_metric(list(values), cumulative, series.sum)
            if self.buckets and self.buckets[0] < 0:
                # prometheus-client leaves out _count and _sum when buckets go below 0
                # (OpenMetrics' rule); the text format has them, and so did we.
                labelled = dict(zip(labels, values, strict=True))
                histogram.add_sample(f"{self.name}_count", labelled, float(total))
                histogram.add_sample(f"{self.name}_sum", labelled, series.sum)
        return histogram


class _Families(Collector):
    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.render()


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


class FeedbackCollector(Collector):
    """The feedback log's counts (`feedback.Log`), read at scrape time.

    The error sums are gauges by type only because prometheus-client would name a
    counter `..._sum_total`; they only grow, so `rate()` applies as to a counter."""

    def __init__(self, log: feedback.Log) -> None:
        self._log = log

    def collect(self) -> Iterator[Metric]:
        log = self._log
        items = CounterMetricFamily(
            "pitstop_feedback_items", "Feedback items answered, by status", labels=["status"]
        )
        for status, count in log.items.items():
            items.add_metric([status], count)
        yield items
        yield CounterMetricFamily(
            "pitstop_feedback_evicted",
            "Predictions dropped from the feedback log, oldest first, to keep it bounded",
            value=log.evicted,
        )
        yield GaugeMetricFamily(
            "pitstop_feedback_log_entries",
            "Request ids held for feedback (counted ones included)",
            value=len(log),
        )
        for prefix, quality, whose in (
            ("pitstop_labelled", log.primary, "this model's"),
            ("pitstop_shadow_labelled", log.shadow, "the shadow's (mirrored requests)"),
        ):
            if quality.classifier:
                results = CounterMetricFamily(
                    f"{prefix}_predictions",
                    f"Rows of {whose} predictions with a true outcome, by result",
                    labels=["result"],
                )
                results.add_metric(["correct"], quality.correct)
                results.add_metric(["wrong"], quality.rows - quality.correct)
                yield results
                by_class = CounterMetricFamily(
                    f"{prefix}_predictions_by_class",
                    f"Rows of {whose} predictions with a true outcome, by true class and result",
                    labels=["class", "result"],
                )
                for label, (right, wrong) in quality.by_class.items():
                    by_class.add_metric([str(label), "correct"], right)
                    by_class.add_metric([str(label), "wrong"], wrong)
                yield by_class
            else:
                yield CounterMetricFamily(
                    f"{prefix}_rows",
                    f"Rows of {whose} predictions with a true outcome",
                    value=quality.rows,
                )
                yield GaugeMetricFamily(
                    f"{prefix}_absolute_error_sum",
                    f"Sum of |prediction - outcome| over {whose} labelled rows",
                    value=quality.absolute_error,
                )
                yield GaugeMetricFamily(
                    f"{prefix}_squared_error_sum",
                    f"Sum of (prediction - outcome)^2 over {whose} labelled rows",
                    value=quality.squared_error,
                )


class Metrics:
    def __init__(self) -> None:
        self.requests = Family(
            "counter", "pitstop_requests", "Requests by endpoint and status code",
            ("endpoint", "code"),
        )  # fmt: skip
        self.latency = Family(
            "histogram", "pitstop_request_duration_seconds", "Time to answer, by endpoint",
            ("endpoint",), LATENCY_BUCKETS,
        )  # fmt: skip
        self.rows = Family("counter", "pitstop_predicted_rows", "Rows predicted")
        self.validation_failures = Family(
            "counter", "pitstop_validation_failures", "Rejected request fields, by field",
            ("field",),
        )  # fmt: skip
        self.output_failures = Family(
            "counter", "pitstop_output_validation_failures", "Model outputs refused, by reason",
            ("reason",),
        )  # fmt: skip
        self.ready = Family("gauge", "pitstop_model_ready", "1 once the model is loaded")
        self.info = Family(
            "gauge", "pitstop_model_info", "The package being served",
            ("name", "version", "digest"),
        )  # fmt: skip
        self.classes = Family(
            "counter", "pitstop_predictions", "Predicted rows by class", ("class",)
        )
        self.values = Family(
            "histogram", "pitstop_prediction_value", "Predicted values (regression models)",
            (), VALUE_BUCKETS,
        )  # fmt: skip
        self.shadow = Family(
            "counter", "pitstop_shadow_requests",
            "Mirrored requests by outcome (agree, disagree, error)", ("outcome",),
        )  # fmt: skip
        self.shadow_latency = Family(
            "histogram", "pitstop_shadow_duration_seconds", "Shadow model's answer time",
            (), LATENCY_BUCKETS,
        )  # fmt: skip
        self.batch_rows = Family(
            "histogram", "pitstop_batch_rows", "Rows per model call (micro-batching)",
            (), BATCH_BUCKETS,
        )  # fmt: skip
        self.shadow_dropped = Family(
            "counter", "pitstop_shadow_dropped",
            "Mirror copies dropped because the queue was full",
        )  # fmt: skip
        for outcome in ("agree", "disagree", "error"):
            self.shadow.labels(outcome)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(
            _Families([value for value in vars(self).values() if isinstance(value, Family)])
        )
        self._requests: dict[tuple[str, int], Value] = {}
        self._latency: dict[str, Distribution] = {}
        self._classes: dict[Any, Value] = {}

    def add_drift(self, scores: Callable[[], tuple[dict[str, float], int]]) -> None:
        self.registry.register(DriftCollector(scores))

    def add_feedback(self, log: feedback.Log) -> None:
        self.registry.register(FeedbackCollector(log))

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        child = self._requests.get((endpoint, code))
        if child is None:
            child = self._requests[endpoint, code] = self.requests.labels(endpoint, str(code))
        child.value += 1
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
            child.value += 1

    def regressed(self, values: list[float]) -> None:
        self.rows.inc(len(values))
        for value in values:
            self.values.observe(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
