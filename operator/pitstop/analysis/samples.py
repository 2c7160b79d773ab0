"""The counters Pitstop reads from a serving-template pod's /metrics (see model_images/)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

PREDICT = "predict"  # the label value the serving template exports (tests/serving)


@dataclass(frozen=True)
class PodCounters:
    """One pod's cumulative counters at one moment (gauges as they are)."""

    requests: float = 0.0
    """Answers of /predict, every status code."""
    errors: float = 0.0
    """Answers of /predict with a 5xx code."""
    buckets: tuple[tuple[float, float], ...] = ()
    """/predict latency histogram: (upper bound in seconds, cumulative count)."""
    drift: float | None = None
    """pitstop_drift_psi_max: the largest feature's PSI over the recent window."""
    agree: float = 0.0
    disagree: float = 0.0
    shadow_errors: float = 0.0


@dataclass(frozen=True)
class Snapshot:
    """A revision's pods at one scrape, by pod name: counters reset with their pod."""

    pods: dict[str, PodCounters] = field(default_factory=dict)


def parse(text: str) -> PodCounters:
    """Read the counters Pitstop needs from a Prometheus text exposition."""
    requests = errors = agree = disagree = shadow_errors = 0.0
    drift: float | None = None
    buckets: dict[float, float] = {}
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
                buckets[bound] = buckets.get(bound, 0.0) + value
            elif sample.name == "pitstop_drift_psi_max":
                drift = value
            elif sample.name == "pitstop_shadow_requests_total":
                outcome = labels.get("outcome")
                if outcome == "agree":
                    agree += value
                elif outcome == "disagree":
                    disagree += value
                elif outcome == "error":
                    shadow_errors += value
    return PodCounters(
        requests=requests, errors=errors, buckets=tuple(sorted(buckets.items())), drift=drift,
        agree=agree, disagree=disagree, shadow_errors=shadow_errors,
    )  # fmt: skip
