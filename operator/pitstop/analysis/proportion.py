"""Judge a proportion (error rate, agreement, a PromQL numerator over denominator).

Absolute limits (`max`, `min`) are one-sided tests of the candidate's own share
against the limit (`bounds.one_sided_evidence`), and the interval shown is those
tests inverted (`bounds.one_sided_bounds`), so a broken limit is always outside it;
relative limits (`maxAboveStable`, `maxRatioToStable`) the two-sample e-processes
(`twosample`), candidate against stable block by block. Each limit of a metric gets an
equal share of the metric's error budget `alpha`. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pitstop.analysis import bounds, twosample
from pitstop.analysis.outcome import Outcome, combine, more_requests, reasons
from pitstop.api.spec import MetricSpec
from pitstop.api.status import MetricEvidence, MetricResult, Tally


@dataclass(frozen=True)
class Block:
    """One look's counts: `hits` of `requests` on the candidate (and on the stable)."""

    requests: float
    hits: float
    stable_requests: float | None = None
    stable_hits: float | None = None


def _relative(metric: MetricSpec) -> tuple[twosample.Kind, float] | None:
    if metric.max_above_stable is not None:
        return "difference", metric.max_above_stable
    if metric.max_ratio_to_stable is not None:
        return "ratio", metric.max_ratio_to_stable
    return None


def judge(
    metric: MetricSpec,
    previous: MetricEvidence | None,
    block: Block | None,
    alpha: float,
    min_requests: int,
) -> tuple[MetricResult, str]:
    """The metric after one more look (`block` None: nothing new to add), and why it
    has not passed."""
    evidence = previous or MetricEvidence()
    relative = _relative(metric)
    if block is not None:
        evidence = _add(evidence, block, relative)
    n, k = evidence.candidate.requests, evidence.candidate.bad
    limits = [x for x in (metric.max, metric.min) if x is not None] + ([1] if relative else [])
    share = alpha / max(1, len(limits))
    outcomes: list[Outcome] = []
    if metric.max is not None:
        outcomes.append(_absolute(metric.name, k, n, metric.max, share, upper_limit=True))
    if metric.min is not None:
        outcomes.append(_absolute(metric.name, k, n, metric.min, share, upper_limit=False))
    lower: float | None = None
    upper: float | None = None
    if relative is None and n > 0:
        lower, upper = bounds.one_sided_bounds(k, n, share)
    stable_value = None
    if relative is not None:
        kind, limit = relative
        outcome, lower, upper = _compare(metric.name, kind, limit, evidence, share, block)
        outcomes.append(outcome)
        stable = evidence.stable or Tally()
        stable_value = stable.bad / stable.requests if stable.requests else None
    verdict, needs = combine(outcomes, n, min_requests)
    result = MetricResult(
        name=metric.name, value=k / n if n else None, stable_value=stable_value,
        lower=lower, upper=upper, verdict=verdict, requests=n, needs=needs,
        evidence=evidence,
    )  # fmt: skip
    return result, reasons(outcomes)


def _add(
    evidence: MetricEvidence, block: Block, relative: tuple[twosample.Kind, float] | None
) -> MetricEvidence:
    candidate = Tally(
        requests=evidence.candidate.requests + block.requests,
        bad=evidence.candidate.bad + min(block.hits, block.requests),
    )
    if relative is None or block.stable_requests is None or block.stable_hits is None:
        return evidence.model_copy(update={"candidate": candidate})
    kind, limit = relative
    stable = evidence.stable or Tally()
    test = _test(kind, limit)
    logs = (tuple(evidence.above), tuple(evidence.below)) if evidence.test == test else ((), ())
    before = twosample.Evidence(
        evidence.candidate.requests, evidence.candidate.bad, stable.requests, stable.bad, *logs
    )
    after = twosample.update(
        before, kind, twosample.grid(kind, limit),
        (block.requests, block.hits, block.stable_requests, block.stable_hits), limit,
    )  # fmt: skip
    return MetricEvidence(
        candidate=candidate,
        stable=Tally(requests=after.stable_requests, bad=after.stable_bad),
        above=[round(x, 6) for x in after.above],
        below=[round(x, 6) for x in after.below],
        test=test,
    )


def _test(kind: twosample.Kind, limit: float) -> str:
    """What `above` and `below` are kept for: evidence kept for another limit, or in an
    older shape, starts again."""
    return f"{kind} {limit:g} bets {twosample.BETS}"


def _absolute(
    name: str, k: float, n: float, limit: float, alpha: float, *, upper_limit: bool
) -> Outcome:
    """One-sided tests against the limit: "does the share break it?" at alpha and "does
    it keep it?" at alpha — narrower questions than the confidence sequence's interval
    answers, so a 20 % error rate breaks `max: 0.05` at 99 % after about 40 answers
    instead of 50 (each test holds at every look; `bounds.one_sided_evidence`)."""
    sign = "<=" if upper_limit else ">="
    what = f"{name} {sign} {limit:g}"
    up, down = (float(x[0]) for x in bounds.one_sided_evidence(limit, np.array([k]), n))
    broken, kept = (up, down) if upper_limit else (down, up)
    needed = math.log(1.0 / alpha)
    if broken >= needed:
        return Outcome("Fail", f"{name} {k / n:.4g} breaks {sign} {limit:g} (confident)")
    if kept >= needed:
        return Outcome("Pass", "")
    estimate = k / n if n else None
    if estimate is None:
        return Outcome("Inconclusive", f"{what}: not enough evidence")
    deficit = needed - max(broken, kept)
    needs = more_requests(deficit, _kl(estimate, limit))
    return Outcome("Inconclusive", f"{what}: not enough evidence", needs)


def _compare(
    name: str,
    kind: twosample.Kind,
    limit: float,
    evidence: MetricEvidence,
    alpha: float,
    block: Block | None,
) -> tuple[Outcome, float | None, float | None]:
    thresholds = twosample.grid(kind, limit)
    stable = evidence.stable or Tally()
    state = twosample.Evidence(
        evidence.candidate.requests, evidence.candidate.bad, stable.requests, stable.bad,
        tuple(evidence.above), tuple(evidence.below),
    )  # fmt: skip
    lower, upper = twosample.bounds(state, thresholds, alpha)
    text = f"stable + {limit:g}" if kind == "difference" else f"{limit:g} x stable"
    if evidence.test != _test(kind, limit) or len(evidence.above) != twosample.BETS * len(
        thresholds
    ):
        return Outcome("Inconclusive", f"{name} <= {text}: no interval measured yet"), None, None
    split = (block.requests, block.stable_requests) if block and block.stable_requests else (
        evidence.candidate.requests, stable.requests
    )  # fmt: skip
    verdict, needs = twosample.verdict(kind, limit, thresholds, state, alpha, split[0],
                                       split[1] or 0.0)  # fmt: skip
    if verdict == "Fail":
        return Outcome("Fail", f"{name} breaks <= {text} (confident)"), lower, upper
    if verdict == "Pass":
        return Outcome("Pass", ""), lower, upper
    return Outcome("Inconclusive", f"{name} <= {text}: not enough evidence", needs), lower, upper


def _kl(p: float, q: float) -> float:
    p, q = min(max(p, 1e-9), 1 - 1e-9), min(max(q, 1e-9), 1 - 1e-9)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
