"""What Pitstop reads from one serving-template pod: its cumulative counters.

The template answers `GET /evidence` (model_images/README.md, "Evidence for the
operator's judge"): request and error counts, /predict latencies in the fine buckets of
Prometheus' native-histogram schema 5 (each bucket 2.2 % wider than the last; schema 3,
9 %, from older images), drift rows per training-profile bin and shadow comparisons.
Images built before that endpoint existed are read from `/metrics` instead, with its
coarse latency buckets and no drift bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pitstop.packaging import latency

PREDICT = "predict"  # the label value the serving template exports (tests/serving)


@dataclass(frozen=True)
class Labelled:
    """Predictions whose true outcome came back (`POST /feedback`), cumulative: rows,
    and for classifiers the correct ones, for regressors the sums of absolute and
    squared errors (`correct` is None for a regressor)."""

    rows: float = 0.0
    correct: float | None = None
    absolute: float = 0.0
    squared: float = 0.0

    def minus(self, old: Labelled) -> Labelled:
        def less(a: float, b: float) -> float:
            return max(0.0, a - b)

        correct = None if self.correct is None else less(self.correct, old.correct or 0.0)
        return Labelled(less(self.rows, old.rows), correct, less(self.absolute, old.absolute),
                        less(self.squared, old.squared))  # fmt: skip

    def plus(self, other: Labelled) -> Labelled:
        correct = (None if self.correct is None and other.correct is None
                   else (self.correct or 0.0) + (other.correct or 0.0))  # fmt: skip
        return Labelled(self.rows + other.rows, correct, self.absolute + other.absolute,
                        self.squared + other.squared)  # fmt: skip


def _labelled(section: Mapping[str, Any] | None) -> Labelled:
    if not section:
        return Labelled()
    correct = section.get("correct")
    return Labelled(
        rows=float(section.get("rows", 0)),
        correct=None if correct is None else float(correct),
        absolute=float(section.get("absolute_error", 0) or 0),
        squared=float(section.get("squared_error", 0) or 0),
    )


@dataclass(frozen=True)
class PodCounters:
    """One pod's cumulative counters at one moment."""

    instance: str | None = None
    """Changes when the server restarts (its counters start again from zero)."""
    requests: float = 0.0
    """Answers of /predict, every status code."""
    errors: float = 0.0
    """Answers of /predict with a 5xx code."""
    latency: Mapping[float, float] = field(default_factory=dict)
    """/predict answers per latency bucket (not cumulative), by upper bound in seconds."""
    bins: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Drift: rows binned per profile bin, by feature."""
    expected: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Drift: the training shares of those bins."""
    agree: float = 0.0
    disagree: float = 0.0
    shadow_errors: float = 0.0
    quality: Labelled = field(default_factory=Labelled)
    """This pod's own answers with outcomes."""
    shadow_quality: Labelled = field(default_factory=Labelled)
    """The shadow's answers to copies this pod mirrored, against the same outcomes."""
    package: Mapping[str, Any] | None = None
    """What the pod serves: package digest and training data version (`model`)."""


def bucket_bound(index: int, schema: int = latency.SCHEMA) -> float:
    """Upper bound in seconds of bucket `index`: 2 ** (index / 2 ** schema)."""
    return latency.upper_bound(index, schema)


def parse_evidence(body: Mapping[str, Any]) -> PodCounters:
    """Read the template's /evidence answer."""
    predict = body.get("predict") or {}
    latency_section = predict.get("latency") or {}
    schema = latency_section.get("schema", latency.SCHEMA)
    if schema not in latency.SCHEMAS:
        raise ValueError(f"unknown latency schema {schema}")
    times = {
        bucket_bound(int(index), schema): float(count)
        for index, count in (latency_section.get("counts") or {}).items()
    }
    bins: dict[str, tuple[float, ...]] = {}
    expected: dict[str, tuple[float, ...]] = {}
    for name, feature in ((body.get("drift") or {}).get("features") or {}).items():
        bins[name] = tuple(float(c) for c in feature.get("counts") or ())
        expected[name] = tuple(float(e) for e in feature.get("expected") or ())
    shadow = body.get("shadow") or {}
    return PodCounters(
        instance=str(body.get("instance")) if body.get("instance") is not None else None,
        requests=float(predict.get("requests", 0)), errors=float(predict.get("errors", 0)),
        latency=times, bins=bins, expected=expected,
        agree=float(shadow.get("agree", 0)), disagree=float(shadow.get("disagree", 0)),
        shadow_errors=float(shadow.get("error", 0)),
        quality=_labelled(body.get("quality")), shadow_quality=_labelled(body.get("shadow_quality")),
        package=body.get("model") if isinstance(body.get("model"), dict) else None,
    )  # fmt: skip


def parse_metrics(text: str) -> PodCounters:
    """Read the counters Pitstop needs from a Prometheus text exposition (old images)."""
    requests = errors = agree = disagree = shadow_errors = 0.0
    cumulative: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "pitstop_requests_total" and labels.get("endpoint") == PREDICT:
                requests += value
                if labels.get("code", "").startswith("5"):
                    errors += value
            elif (
                sample.name == "pitstop_request_duration_seconds_bucket"
                and labels.get("endpoint") == PREDICT
            ):
                bound = math.inf if labels["le"] in ("+Inf", "inf") else float(labels["le"])
                cumulative[bound] = cumulative.get(bound, 0.0) + value
            elif sample.name == "pitstop_shadow_requests_total":
                outcome = labels.get("outcome")
                if outcome == "agree":
                    agree += value
                elif outcome == "disagree":
                    disagree += value
                elif outcome == "error":
                    shadow_errors += value
    latency, below = {}, 0.0
    for bound, count in sorted(cumulative.items()):
        latency[bound] = max(0.0, count - below)
        below = count
    return PodCounters(
        requests=requests, errors=errors, latency=latency,
        agree=agree, disagree=disagree, shadow_errors=shadow_errors,
    )  # fmt: skip
