"""Judge the p99 latency from both revisions' latency buckets — not a ratio of two noisy
p99 estimates, but bounds on each quantile that hold at every look (`bounds`).

"p99 <= 1.2 x stable" fails when confident the candidate's p99 lies above 1.2 times
an upper bound of the stable's, passes when confident it lies below 1.2 times a lower
bound of it. A failure rests on two bounds (the candidate's lower, the stable's upper)
and a pass on the other two, so each bound gets half of the limit's error budget.
Bucket bounds are the precision: the template's buckets are 2.2 % apart (schema 5), so
the two bounds lose about 4 % of a limit's room to rounding; images that send schema 3
(9 %) lose about 18 %, most of a 1.2 limit's; images without /evidence (classic
buckets 2-2.5x apart) cannot show a ratio below about 5 to pass.
Pure.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pitstop.analysis import bounds
from pitstop.analysis.outcome import Outcome, combine, reasons
from pitstop.api.spec import MetricSpec
from pitstop.api.status import MetricEvidence, MetricResult, Tally

Q = 0.99


@dataclass(frozen=True)
class Block:
    """One look's answers per latency bucket (by upper bound in seconds)."""

    candidate: Mapping[float, float]
    stable: Mapping[float, float] | None = None


def _key(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else format(bound, ".6g")


def _merge(tally: Tally | None, buckets: Mapping[float, float]) -> Tally:
    old = dict((tally.buckets or {}) if tally else {})
    for bound, count in buckets.items():
        if count > 0:
            old[_key(bound)] = old.get(_key(bound), 0.0) + count
    return Tally(requests=sum(old.values()), buckets=old)


def _buckets(tally: Tally | None) -> list[tuple[float, float]]:
    found = sorted(
        (float(bound), count) for bound, count in ((tally.buckets or {}) if tally else {}).items()
    )
    return found


def judge(
    metric: MetricSpec,
    previous: MetricEvidence | None,
    block: Block | None,
    alpha: float,
    min_requests: int,
) -> tuple[MetricResult, str]:
    evidence = previous or MetricEvidence()
    if block is not None:
        stable = evidence.stable
        if block.stable is not None:
            stable = _merge(stable, block.stable)
        evidence = MetricEvidence(candidate=_merge(evidence.candidate, block.candidate),
                                  stable=stable)  # fmt: skip
    limits = [
        x for x in (metric.max, metric.min, metric.max_above_stable, metric.max_ratio_to_stable)
        if x is not None
    ]  # fmt: skip
    # A failure rests on two bounds (the candidate's lower, the stable's upper), a pass on
    # the other two: half of the limit's budget for each keeps either error within it.
    share = alpha / max(1, len(limits)) / 2
    cand = bounds.quantile_bounds(_buckets(evidence.candidate), Q, share)
    stab = bounds.quantile_bounds(_buckets(evidence.stable), Q, share)
    outcomes: list[Outcome] = []
    lower, upper = _positive(cand.lower), _finite(cand.upper)
    if metric.max is not None:
        outcomes.append(_check(metric.name, f"<= {metric.max:g}s", cand.lower >= metric.max,
                               cand.upper <= metric.max))  # fmt: skip
    if metric.min is not None:
        outcomes.append(_check(metric.name, f">= {metric.min:g}s", cand.upper < metric.min,
                               cand.lower >= metric.min))  # fmt: skip
    if metric.max_ratio_to_stable is not None:
        r = metric.max_ratio_to_stable
        outcomes.append(_check(metric.name, f"<= {r:g} x stable", cand.lower >= r * stab.upper,
                               stab.lower > 0 and cand.upper <= r * stab.lower))  # fmt: skip
        lower = cand.lower / stab.upper if cand.lower > 0 and math.isfinite(stab.upper) else None
        upper = cand.upper / stab.lower if stab.lower > 0 and math.isfinite(cand.upper) else None
    if metric.max_above_stable is not None:
        d = metric.max_above_stable
        outcomes.append(_check(metric.name, f"<= stable + {d:g}s", cand.lower - stab.upper >= d,
                               cand.upper - stab.lower <= d))  # fmt: skip
        lower = _finite(cand.lower - stab.upper)
        upper = _finite(cand.upper - stab.lower)
    n = evidence.candidate.requests
    estimate, target, ratio = cand.estimate, metric.max, True
    if metric.max_ratio_to_stable is not None:
        estimate = cand.estimate / stab.estimate if cand.estimate and stab.estimate else None
        target = metric.max_ratio_to_stable
    elif metric.max_above_stable is not None:
        estimate = (cand.estimate - stab.estimate
                    if cand.estimate is not None and stab.estimate is not None else None)  # fmt: skip
        target, ratio = metric.max_above_stable, False
    outcomes = [_with_needs(o, n, estimate, (lower, upper), target, ratio, share) for o in outcomes]
    verdict, needs = combine(outcomes, n, min_requests)
    result = MetricResult(
        name=metric.name, value=cand.estimate, stable_value=stab.estimate, lower=lower,
        upper=upper, verdict=verdict, requests=n, needs=needs, evidence=evidence,
    )  # fmt: skip
    return result, reasons(outcomes)


def _check(name: str, limit: str, broken: bool, kept: bool) -> Outcome:
    if broken:
        return Outcome("Fail", f"{name} breaks p99 {limit} (confident)")
    if kept:
        return Outcome("Pass")
    return Outcome("Inconclusive", f"{name} p99 {limit}: not enough evidence")


def _with_needs(
    outcome: Outcome, n: float, estimate: float | None, interval: tuple[float | None, float | None],
    target: float | None, ratio: bool, alpha: float,
) -> Outcome:  # fmt: skip
    """A rough count: an interval narrows like 1/sqrt(requests). None when the estimate
    sits on the limit, or the interval is already narrow enough and only the buckets'
    resolution keeps it across the limit."""
    low, high = interval
    if outcome.verdict != "Inconclusive" or n <= 0 or estimate is None or target is None:
        return outcome
    if low is None or high is None:
        # No bound on a p99 yet: even with no answer in the tail it takes this many.
        return Outcome(outcome.verdict, outcome.reason, max(1, math.ceil(_least(alpha) - n)))
    if ratio and (low <= 0 or estimate <= 0 or target <= 0):
        return outcome

    def scale(x: float) -> float:
        return math.log(x) if ratio else x

    distance = abs(scale(estimate) - scale(target))
    half = scale(high) - scale(estimate) if estimate < target else scale(estimate) - scale(low)
    if distance <= 1e-9 or half <= distance:
        return outcome
    return Outcome(outcome.verdict, outcome.reason, math.ceil(n * (half / distance) ** 2 - n))


@functools.lru_cache(maxsize=64)
def _least(alpha: float) -> float:
    """The fewest answers that can bound a p99 at all: none of them in the tail (the
    same few alphas come back at every look)."""
    n = 1.0
    while not bounds.one_sided(1.0 - Q, np.zeros(1), n, alpha)[1][0]:
        n *= 1.1
    return n


def _positive(x: float) -> float | None:
    return x if x > 0 else None


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
