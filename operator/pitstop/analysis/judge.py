"""The analysis judge: every metric's verdict after one more look, and the overall one.

Sequential metrics (builtin ones and PromQL counts) accumulate evidence across looks
and are judged at the spec's confidence, split evenly over them: the chance that a
candidate within every limit is ever rolled back, over the whole rollout, is at most
1 - confidence, however often the judge looks. Value metrics (a PromQL query, a
webhook) keep the fixed-threshold path (`threshold`) with `failureLimit`.

The overall verdict is Fail as soon as one metric fails, Pass when all pass, and
Inconclusive otherwise — with a message naming what lacks evidence and about how many
more requests it needs. Pure: the evidence arrives as values, the clock as a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pitstop.analysis import drift, latency, proportion, quality, threshold
from pitstop.analysis.samples import Labelled
from pitstop.analysis.threshold import Measurement
from pitstop.analysis.window import Window
from pitstop.api.spec import AnalysisSpec, MetricSpec
from pitstop.api.status import AnalysisStatus, MetricEvidence, MetricResult


@dataclass(frozen=True)
class Look:
    """What both revisions served since the last look (the builtin metrics' evidence)."""

    candidate: Window
    stable: Window | None = None


@dataclass(frozen=True)
class Counts:
    """A PromQL counts metric over one interval: numerator of denominator, per revision."""

    numerator: float | None = None
    denominator: float | None = None
    stable_numerator: float | None = None
    stable_denominator: float | None = None
    error: str | None = None


def sequential(metric: MetricSpec) -> bool:
    """Judged by accumulated evidence (not by one interval's value)."""
    return metric.builtin is not None or (
        metric.prometheus is not None and metric.prometheus.numerator is not None
    )


def alpha_per_metric(spec: AnalysisSpec) -> float:
    count = sum(1 for m in spec.metrics if sequential(m))
    return (1.0 - spec.confidence) / max(1, count)


def evaluate(
    spec: AnalysisSpec,
    previous: AnalysisStatus | None,
    revision: str,
    now: datetime,
    look: Look | None = None,
    counts: Mapping[str, Counts] | None = None,
    values: list[Measurement] | None = None,
) -> AnalysisStatus:
    """The analysis of `revision` after what this pass measured (None: nothing new)."""
    same = previous is not None and previous.revision == revision
    before = {m.name: m for m in previous.metrics} if previous is not None and same else {}
    alpha = alpha_per_metric(spec)
    by_value = {m.name: m for m in values or []}
    results: list[MetricResult] = []
    reasons: dict[str, str] = {}
    problems: dict[str, str] = {}  # why a sequential metric got no evidence this time
    value_failed = False
    for metric in spec.metrics:
        old = before.get(metric.name)
        if sequential(metric):
            result, reason = _sequential(metric, old, look, counts, alpha, spec.min_requests)
            problem = _problem(metric, counts)
            if problem is not None:
                problems[metric.name] = problem
        elif values is not None:
            missing = Measurement(metric.name, None, error="not measured")
            result, reason = threshold.judge(metric, by_value.get(metric.name, missing),
                                             spec.min_requests)  # fmt: skip
            value_failed = value_failed or result.verdict == "Fail"
        else:
            result = old or MetricResult(name=metric.name, limit=threshold.limit_text(metric))
            reason = "" if result.verdict == "Pass" else f"{metric.name}: not measured yet"
        results.append(result)
        reasons[metric.name] = reason
    failures = (previous.failures if previous and same else 0) + (1 if value_failed else 0)
    failed = [r.name for r in results if r.verdict == "Fail" and _is_sequential(spec, r.name)]
    if failed or failures > spec.failure_limit:
        verdict = "Fail"
        broken = [r.name for r in results if r.verdict == "Fail" and r.name not in failed]
        message = "; ".join(
            [reasons[name] for name in failed]
            + ([f"{failures} failed measurement(s) of value metrics, limit "
                f"{spec.failure_limit}"] + [reasons[name] for name in broken]
               if failures > spec.failure_limit else [])
        )  # fmt: skip
    elif all(r.verdict == "Pass" for r in results):
        verdict, message = "Pass", "all metrics within limits"
    else:
        verdict = "Inconclusive"
        message = "; ".join(
            (describe(r) + (f" ({problems[r.name]})" if r.name in problems else ""))
            if r.evidence is not None else reasons[r.name] or f"{r.name}: pending"
            for r in results if r.verdict != "Pass"
        )  # fmt: skip
    added = look is not None or counts is not None
    return AnalysisStatus(
        revision=revision,
        last_check=now if added or not same else (previous.last_check if previous else now),
        last_value_check=now if values is not None else (previous.last_value_check
                                                         if previous and same else None),
        failures=failures, verdict=verdict, message=message, metrics=results,
        smoke=previous.smoke if previous and same else None,
        load_test=previous.load_test if previous and same else None,
        stress=previous.stress if previous and same else None,
        generated=previous.generated if previous and same else None,
    )  # fmt: skip


def seconds_to_verdict(status: AnalysisStatus | None, rate: float | None) -> float | None:
    """How long the candidate takes, at `rate` requests per second, to answer the fewest
    requests an unsettled metric still needs — the soonest its verdict can change (None
    when no metric can say)."""
    if status is None or rate is None or rate <= 0:
        return None
    needs = [m.needs for m in status.metrics if m.verdict == "Inconclusive" and m.needs]
    return min(needs) / rate if needs else None


def past_limit(metric: MetricSpec, result: MetricResult) -> bool:
    """Whether the metric's estimate (not its confident bound) is beyond its limit: the
    first sign of a failure the judge may later confirm."""
    value, stable = result.value, result.stable_value
    if value is None:
        return False
    if metric.max is not None and value > metric.max:
        return True
    if metric.min is not None and value < metric.min:
        return True
    if stable is None:
        return False
    if metric.max_above_stable is not None:
        return value - stable > metric.max_above_stable
    if metric.max_ratio_to_stable is not None:
        return value > metric.max_ratio_to_stable * stable
    return False


def describe(result: MetricResult) -> str:
    """One metric in a sentence: estimate, interval, limit, and what it still needs."""
    text = result.name
    if result.value is not None:
        text += f" {result.value:.4g}"
        if result.stable_value is not None:
            text += f" (stable {result.stable_value:.4g})"
    if result.lower is not None or result.upper is not None:
        low = "..." if result.lower is None else f"{result.lower:.3g}"
        high = "..." if result.upper is None else f"{result.upper:.3g}"
        text += f", interval [{low}, {high}]"
    if result.limit:
        text += f", limit {result.limit}"
    if result.verdict == "Inconclusive":
        text += (
            f": needs about {result.needs:,} more requests" if result.needs is not None
            else ": not enough evidence yet"
        )  # fmt: skip
    return text


def _is_sequential(spec: AnalysisSpec, name: str) -> bool:
    return any(m.name == name and sequential(m) for m in spec.metrics)


def _sequential(
    metric: MetricSpec,
    old: MetricResult | None,
    look: Look | None,
    counts: Mapping[str, Counts] | None,
    alpha: float,
    min_requests: int,
) -> tuple[MetricResult, str]:
    evidence: MetricEvidence | None = old.evidence if old is not None else None
    kind = metric.builtin
    if kind == "latencyP99":
        block = None if look is None else latency.Block(
            look.candidate.latency, look.stable.latency if look.stable else None
        )  # fmt: skip
        result, reason = latency.judge(metric, evidence, block, alpha, min_requests)
    elif kind == "drift":
        drift_block = None if look is None else drift.Block(look.candidate.bins,
                                                            look.candidate.expected)  # fmt: skip
        result, reason = drift.judge(metric, evidence, drift_block, alpha, min_requests)
    elif kind == "quality":
        labelled = None
        if look is not None:
            # A shadow answers only copies: the stable's pods, which mirrored them, match
            # its answers to the outcomes.
            shadowed = look.stable.shadow_quality if look.stable else Labelled()
            labelled = quality.Block(look.candidate.quality.plus(shadowed),
                                     look.stable.quality if look.stable else None)  # fmt: skip
        result, reason = quality.judge(metric, evidence, labelled, alpha, min_requests)
    else:
        counted = _proportion_block(metric, look, counts)
        result, reason = proportion.judge(metric, evidence, counted, alpha, min_requests)
    return result.model_copy(update={"limit": threshold.limit_text(metric)}), reason


def _problem(metric: MetricSpec, counts: Mapping[str, Counts] | None) -> str | None:
    found = (counts or {}).get(metric.name)
    if found is None:
        return None
    if found.error is not None:
        return found.error
    return "no counts" if found.numerator is None or found.denominator is None else None


def _proportion_block(
    metric: MetricSpec, look: Look | None, counts: Mapping[str, Counts] | None
) -> proportion.Block | None:
    if metric.builtin == "errorRate":
        if look is None:
            return None
        stable = look.stable
        return proportion.Block(
            look.candidate.requests, look.candidate.errors,
            stable.requests if stable else None, stable.errors if stable else None,
        )  # fmt: skip
    if metric.builtin == "agreement":
        # Mirrored requests are compared on the stable's pods, which send the copies.
        if look is None or look.stable is None:
            return None
        return proportion.Block(look.stable.compared, look.stable.agree)
    found = (counts or {}).get(metric.name)
    if found is None or found.numerator is None or found.denominator is None:
        return None
    return proportion.Block(
        found.denominator, found.numerator, found.stable_denominator, found.stable_numerator
    )
