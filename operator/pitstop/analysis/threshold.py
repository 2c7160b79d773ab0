"""The fixed-threshold judge: one interval's value against the limits, failures counted.

This is how value metrics (a PromQL `query`, a webhook) are judged, and how every
metric was judged before the sequential judge (`judge`): a measurement with too little
traffic (fewer than `minRequests`), or without a value, is *inconclusive*; a failed
measurement counts; more than `failureLimit` of them fail the analysis. Its weakness
is why the sequential judge exists: each interval is another chance of a false alarm,
and small windows are noise. `evaluate` stays, unchanged, as the baseline the verdict
benchmark (tests/benchmarks/verdicts) measures the sequential judge against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pitstop.api import durations
from pitstop.api.spec import AnalysisSpec, MetricSpec
from pitstop.api.status import AnalysisStatus, MetricResult


@dataclass(frozen=True)
class Measurement:
    """What a metric provider measured over one interval."""

    name: str
    value: float | None
    stable_value: float | None = None
    requests: float | None = None
    """Requests behind the value; None when the metric is not request-based."""
    passed: bool | None = None
    """A webhook's own pass/fail."""
    error: str | None = None
    """Why there is no value (provider unreachable, query empty, ...)."""


def due(spec: AnalysisSpec, status: AnalysisStatus | None, revision: str, now: datetime) -> bool:
    if status is None or status.revision != revision or status.last_check is None:
        return True
    return now - status.last_check >= durations.parse(spec.interval)


def seconds_until_due(spec: AnalysisSpec, status: AnalysisStatus | None, now: datetime) -> float:
    if status is None or status.last_check is None:
        return 0.0
    left = status.last_check + durations.parse(spec.interval) - now
    return max(0.0, left.total_seconds())


def judge(metric: MetricSpec, m: Measurement, min_requests: int) -> tuple[MetricResult, str]:
    """One metric's verdict, and a sentence saying why when it is not a pass."""
    limit = limit_text(metric)
    result = MetricResult(name=metric.name, value=m.value, stable_value=m.stable_value, limit=limit)
    if m.error is not None:
        return result, f"{metric.name}: {m.error}"
    if m.passed is not None and m.value is None:
        verdict = "Pass" if m.passed else "Fail"
        return result.model_copy(update={"verdict": verdict}), f"{metric.name}: webhook said fail"
    if m.requests is not None and m.requests < min_requests:
        return result, f"{metric.name}: {m.requests:.0f} requests < minRequests {min_requests}"
    if m.value is None:
        return result, f"{metric.name}: no value yet"
    broken = _broken(metric, m)
    if broken is None and (m.passed is None or m.passed):
        return result.model_copy(update={"verdict": "Pass"}), ""
    if broken == "":
        return result, f"{metric.name}: no stable value to compare with"
    reason = broken or "webhook said fail"
    return result.model_copy(update={"verdict": "Fail"}), f"{metric.name} {reason}"


def _broken(metric: MetricSpec, m: Measurement) -> str | None:
    """Which limit the value breaks (None: none; "": a relative limit lacks the stable)."""
    value = m.value
    assert value is not None
    if metric.max is not None and value > metric.max:
        return f"{value:.4g} > max {metric.max:g}"
    if metric.min is not None and value < metric.min:
        return f"{value:.4g} < min {metric.min:g}"
    if metric.max_above_stable is not None or metric.max_ratio_to_stable is not None:
        if m.stable_value is None:
            return ""
        if metric.max_above_stable is not None and value > m.stable_value + metric.max_above_stable:
            return (f"{value:.4g} > stable {m.stable_value:.4g} + {metric.max_above_stable:g}")  # fmt: skip
        ratio = metric.max_ratio_to_stable
        if ratio is not None and value > m.stable_value * ratio:
            return f"{value:.4g} > {ratio:g} x stable {m.stable_value:.4g}"
    return None


def limit_text(metric: MetricSpec) -> str:
    parts = []
    if metric.max is not None:
        parts.append(f"<= {metric.max:g}")
    if metric.min is not None:
        parts.append(f">= {metric.min:g}")
    if metric.max_above_stable is not None:
        parts.append(f"<= stable + {metric.max_above_stable:g}")
    if metric.max_ratio_to_stable is not None:
        parts.append(f"<= {metric.max_ratio_to_stable:g} x stable")
    return ", ".join(parts) or "webhook"


def evaluate(
    spec: AnalysisSpec,
    previous: AnalysisStatus | None,
    revision: str,
    measurements: list[Measurement],
    now: datetime,
) -> AnalysisStatus:
    """The analysis status after one more interval's measurements of `revision`."""
    by_name = {m.name: m for m in measurements}
    results, reasons = [], []
    for metric in spec.metrics:
        m = by_name.get(metric.name, Measurement(metric.name, None, error="not measured"))
        result, reason = judge(metric, m, spec.min_requests)
        results.append(result)
        if reason:
            reasons.append(reason)
    failed = [r for r in results if r.verdict == "Fail"]
    same = previous is not None and previous.revision == revision
    failures = (previous.failures if same and previous else 0) + (1 if failed else 0)
    if failures > spec.failure_limit:
        verdict = "Fail"
    elif failed or any(r.verdict == "Inconclusive" for r in results):
        verdict = "Inconclusive"
    else:
        verdict = "Pass"
    if failed:
        reasons.insert(0, f"{failures} failed measurement(s), limit {spec.failure_limit}")
    return AnalysisStatus(
        revision=revision, last_check=now, failures=failures, verdict=verdict,
        message="; ".join(reasons) if verdict != "Pass" else "all metrics within limits",
        metrics=results, smoke=previous.smoke if same and previous else None,
    )  # fmt: skip
