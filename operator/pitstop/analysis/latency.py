"""Judge the p99 latency from both revisions' latency buckets — not a ratio of two noisy
p99 estimates.

Absolute limits (`max`, `min`) hold the candidate's p99 against bounds that are valid
at every look (`bounds.quantile_bounds`).

Relative limits ("p99 <= 1.2 x stable", "<= stable + 50ms") are a two-sample **tail
test**, block by block like the error rate's (`twosample`). Before each block, the
stable's p99 so far gives a threshold t (a bucket bound, chosen from earlier blocks
only, so it is predictable); the block then counts the stable's answers above t and
the candidate's above the limit's image of t (1.2 t, or t + 50ms: the first bucket
bound at or past it, so none of the counted answers can lie below it). Were the
candidate no slower than the limit allows all along its tail (its latency at most 1.2
times the stable's, in distribution), its share above 1.2 t could not exceed the
stable's share above t, whatever t is: that is the null the "above" e-process tests,
and "below" its mirror image (the candidate's share clearly lighter). An identical
candidate satisfies the null exactly, so its false rollbacks are bounded by the
budget at every look.

Why not bounds on both p99s, as before: to fail "p99 <= 1.2 x stable" they had to
place the stable's p99 within a few percent, thousands of the stable's answers (about
400 s at 16 requests/s) before the candidate's could count; the tail test compares
the two shares at the same moment and needs no such precision. A candidate 1.5x
slower has about 3 % of its answers above 1.2 times the stable's p99 against the
stable's 1 %, and an identical one 0.4 %: hundreds of answers tell those apart.

The interval shown to people is still the ratio (or difference) of the two p99s'
bounds. The template's buckets are 2.2 % apart (schema 5); images without /evidence
send classic buckets 2-2.5x apart, which makes the candidate's threshold coarser (the
test stays valid, only slower).
Pure.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pitstop.analysis import bounds, twosample
from pitstop.analysis.outcome import Outcome, combine, reasons
from pitstop.api.spec import MetricSpec
from pitstop.api.status import MetricEvidence, MetricResult, Tally

Q = 0.99
# The tail test compares shares (ratio 1: the candidate's share above the limit's image
# of the threshold against the stable's above the threshold).
TAIL: twosample.Kind = "ratio"
TAIL_THRESHOLDS = (1.0,)


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
    relative = _relative(metric)
    if block is not None:
        evidence = _add(evidence, block, relative)
    limits = [x for x in (metric.max, metric.min) if x is not None] + ([1] if relative else [])
    # Each limit its equal share of the budget; an absolute limit's verdict rests on the
    # candidate's two bounds, half of the share each.
    share = alpha / max(1, len(limits))
    cand = bounds.quantile_bounds(_buckets(evidence.candidate), Q, share / 2)
    stab = bounds.quantile_bounds(_buckets(evidence.stable), Q, share / 2)
    outcomes: list[Outcome] = []
    lower, upper = _positive(cand.lower), _finite(cand.upper)
    if metric.max is not None:
        outcomes.append(_check(metric.name, f"<= {metric.max:g}s", cand.lower >= metric.max,
                               cand.upper <= metric.max))  # fmt: skip
    if metric.min is not None:
        outcomes.append(_check(metric.name, f">= {metric.min:g}s", cand.upper < metric.min,
                               cand.lower >= metric.min))  # fmt: skip
    n = evidence.candidate.requests
    absolute = metric.max if metric.max is not None else metric.min
    outcomes = [_with_needs(o, n, cand.estimate, (lower, upper), absolute, share / 2)
                for o in outcomes]  # fmt: skip
    # The interval shown for a relative limit: the two p99s' bounds, compared.
    if metric.max_ratio_to_stable is not None:
        lower = cand.lower / stab.upper if cand.lower > 0 and math.isfinite(stab.upper) else None
        upper = cand.upper / stab.lower if stab.lower > 0 and math.isfinite(cand.upper) else None
    elif metric.max_above_stable is not None:
        lower = _finite(cand.lower - stab.upper)
        upper = _finite(cand.upper - stab.lower)
    if relative is not None:
        outcomes.append(_tail(metric.name, relative, evidence, share, block))
    verdict, needs = combine(outcomes, n, min_requests)
    result = MetricResult(
        name=metric.name, value=cand.estimate, stable_value=stab.estimate, lower=lower,
        upper=upper, verdict=verdict, requests=n, needs=needs, evidence=evidence,
    )  # fmt: skip
    return result, reasons(outcomes)


Relative = tuple[str, float]  # ("ratio", 1.2) or ("difference", 0.05 seconds)


def _relative(metric: MetricSpec) -> Relative | None:
    if metric.max_ratio_to_stable is not None:
        return "ratio", metric.max_ratio_to_stable
    if metric.max_above_stable is not None:
        return "difference", metric.max_above_stable
    return None


def _test(relative: Relative) -> str:
    """What the tail evidence is kept for: evidence kept for another limit, or in an
    older shape, starts again."""
    kind, limit = relative
    return f"tail {kind} {limit:g} bets {twosample.BETS}"


def _add(evidence: MetricEvidence, block: Block, relative: Relative | None) -> MetricEvidence:
    """Merge the block's buckets and, for a relative limit, add its tail counts (kept as
    each tally's `bad`: answers above that block's threshold) and e-values."""
    candidate = _merge(evidence.candidate, block.candidate)
    if block.stable is None:
        return evidence.model_copy(update={"candidate": candidate})
    stable = _merge(evidence.stable, block.stable)
    if relative is None:
        return evidence.model_copy(update={"candidate": candidate, "stable": stable})
    test = _test(relative)
    fresh = evidence.test != test
    old_c = Tally() if fresh else evidence.candidate
    old_s = Tally() if fresh else (evidence.stable or Tally())
    before = twosample.Evidence(
        old_c.requests, old_c.bad, old_s.requests, old_s.bad,
        () if fresh else tuple(evidence.above), () if fresh else tuple(evidence.below),
    )  # fmt: skip
    counts = _tail_counts(relative, evidence, block)
    after = (
        before
        if counts is None
        else twosample.update(before, TAIL, TAIL_THRESHOLDS, counts, TAIL_THRESHOLDS[0])
    )
    return MetricEvidence(
        candidate=candidate.model_copy(update={"bad": after.candidate_bad}),
        stable=stable.model_copy(update={"bad": after.stable_bad}),
        above=[round(x, 6) for x in after.above],
        below=[round(x, 6) for x in after.below],
        test=test,
    )  # fmt: skip


def _tail_counts(
    relative: Relative, evidence: MetricEvidence, block: Block
) -> tuple[float, float, float, float] | None:
    """(candidate answers, of them above the limit's image of the threshold, stable
    answers, of them above the threshold) in this block; None without a threshold yet
    (the stable has no answers before this block, or its p99 is in the +Inf bucket)."""
    assert block.stable is not None
    threshold = _p99_bound(_buckets(evidence.stable))
    if threshold is None:
        return None
    kind, limit = relative
    image = threshold * limit if kind == "ratio" else threshold + limit
    # Buckets of one scheme never straddle each other's bounds: an answer in a bucket
    # whose bound lies past `edge` lies past `edge` itself (so past the image).
    held = [*(evidence.candidate.buckets or {}), *((evidence.stable or Tally()).buckets or {})]
    known = sorted({float(b) for b in held} | set(block.candidate) | set(block.stable))
    edge = next((b for b in known if b >= image * (1 - 1e-9)), math.inf)
    n_c = sum(block.candidate.values())
    n_s = sum(block.stable.values())
    above_c = sum(c for b, c in block.candidate.items() if b > edge)
    above_s = sum(c for b, c in block.stable.items() if b > threshold)
    return n_c, above_c, n_s, above_s


def _p99_bound(buckets: list[tuple[float, float]]) -> float | None:
    """The bound of the bucket the p99 falls in (a bound: answers above it are counted
    exactly); None without answers, or when it is the +Inf bucket."""
    total = sum(count for _, count in buckets)
    seen = 0.0
    for bound, count in buckets:
        seen += count
        if total > 0 and seen >= Q * total:
            return bound if math.isfinite(bound) and bound > 0 else None
    return None


def _tail(
    name: str, relative: Relative, evidence: MetricEvidence, alpha: float, block: Block | None
) -> Outcome:
    kind, limit = relative
    text = f"<= {limit:g} x stable" if kind == "ratio" else f"<= stable + {limit:g}s"
    if evidence.test != _test(relative) or len(evidence.above) != twosample.BETS:
        return Outcome("Inconclusive", f"{name} p99 {text}: not enough evidence")
    stable = evidence.stable or Tally()
    state = twosample.Evidence(
        evidence.candidate.requests, evidence.candidate.bad, stable.requests, stable.bad,
        tuple(evidence.above), tuple(evidence.below),
    )  # fmt: skip
    split = (
        (sum(block.candidate.values()), sum(block.stable.values()))
        if block is not None and block.stable
        else (evidence.candidate.requests, stable.requests)
    )
    verdict, needs = twosample.verdict(TAIL, TAIL_THRESHOLDS[0], TAIL_THRESHOLDS, state, alpha,
                                       *split)  # fmt: skip
    if verdict == "Fail":
        return Outcome("Fail", f"{name} breaks p99 {text} (confident)")
    if verdict == "Pass":
        return Outcome("Pass")
    return Outcome("Inconclusive", f"{name} p99 {text}: not enough evidence", needs)


def _check(name: str, limit: str, broken: bool, kept: bool) -> Outcome:
    if broken:
        return Outcome("Fail", f"{name} breaks p99 {limit} (confident)")
    if kept:
        return Outcome("Pass")
    return Outcome("Inconclusive", f"{name} p99 {limit}: not enough evidence")


def _with_needs(
    outcome: Outcome, n: float, estimate: float | None, interval: tuple[float | None, float | None],
    target: float | None, alpha: float,
) -> Outcome:  # fmt: skip
    """An absolute limit's rough count: an interval narrows like 1/sqrt(requests), on a
    log scale. None when the estimate sits on the limit, or the interval is already
    narrow enough and only the buckets' resolution keeps it across the limit."""
    low, high = interval
    if outcome.verdict != "Inconclusive" or n <= 0 or estimate is None or target is None:
        return outcome
    if low is None or high is None:
        # No bound on a p99 yet: even with no answer in the tail it takes this many.
        return Outcome(outcome.verdict, outcome.reason, max(1, math.ceil(_least(alpha) - n)))
    if low <= 0 or estimate <= 0 or target <= 0:
        return outcome
    log = math.log
    distance = abs(log(estimate) - log(target))
    half = log(high) - log(estimate) if estimate < target else log(estimate) - log(low)
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
