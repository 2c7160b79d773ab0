"""Judge the builtin `quality` metric: the model's error on predictions whose true
outcome came back (`POST /feedback`). Lower is better, as for errorRate. Pure.

- A classifier's quality is its share of wrong classes (1 - accuracy): a proportion,
  judged exactly as the error rate is (`proportion`: one-sided tests against `max`,
  two-sample e-processes against the stable for relative limits).
- A regressor's is its mean absolute error (MAE), judged with asymptotic confidence
  sequences for each revision's mean (Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
  "Time-uniform central limit theory and asymptotic confidence sequences", 2021,
  Theorem 2.2, the normal-mixture boundary): valid at every look, like the other
  judges, for errors with a finite variance, which the template's counters give
  (n, the sum of |e|, the sum of e**2 = |e|**2). A relative limit compares the two
  revisions' intervals, each at half the limit's share of alpha (a union bound).

Either way `minRequests` counts labelled predictions, not requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pitstop.analysis import proportion
from pitstop.analysis.outcome import Outcome, combine, reasons
from pitstop.analysis.samples import Labelled
from pitstop.api.spec import MetricSpec
from pitstop.api.status import MetricEvidence, MetricResult, Tally


@dataclass(frozen=True)
class Block:
    """One look's labelled predictions: the candidate's (its own answers and, for a
    shadow, its answers to the copies the stable mirrored) and the stable's."""

    candidate: Labelled
    stable: Labelled | None = None


def judge(
    metric: MetricSpec,
    previous: MetricEvidence | None,
    block: Block | None,
    alpha: float,
    min_requests: int,
) -> tuple[MetricResult, str]:
    classifier = _classifier(previous, block)
    if classifier is None:  # nothing labelled yet: no evidence of either kind
        result = MetricResult(name=metric.name, requests=0.0, evidence=previous)
        return result, f"{metric.name}: no feedback yet (POST /feedback)"
    if classifier:
        counted = None
        if block is not None:
            stable = block.stable
            counted = proportion.Block(
                block.candidate.rows, block.candidate.rows - (block.candidate.correct or 0.0),
                stable.rows if stable else None,
                stable.rows - (stable.correct or 0.0) if stable else None,
            )  # fmt: skip
        return proportion.judge(metric, previous, counted, alpha, min_requests)
    return _mae(metric, previous, block, alpha, min_requests)


def _classifier(previous: MetricEvidence | None, block: Block | None) -> bool | None:
    if block is not None and block.candidate.rows + (block.stable.rows if block.stable else 0):
        sides = [block.candidate] + ([block.stable] if block.stable else [])
        return any(side.correct is not None for side in sides if side.rows)
    if previous is not None and previous.candidate.requests:
        return previous.candidate.total is None
    return None


def _tally(old: Tally | None, new: Labelled | None) -> Tally:
    old = old or Tally()
    if new is None:
        return old
    return Tally(requests=old.requests + new.rows, total=(old.total or 0.0) + new.absolute,
                 squares=(old.squares or 0.0) + new.squared)  # fmt: skip


# The normal mixture is tightest around this many observations: where a verdict is
# usually due (the default minRequests is 50).
TUNED_FOR = 500


def radius(n: float, variance: float, alpha: float) -> float:
    """Half-width of the two-sided asymptotic confidence sequence for a mean after `n`
    observations of sample variance `variance`, at level `alpha` (Theorem 2.2)."""
    if n <= 1:
        return math.inf
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / TUNED_FOR
    spread = n * max(variance, 1e-12) * rho2 + 1
    return math.sqrt(2 * spread / (n * n * rho2) * math.log(math.sqrt(spread) / alpha))


def _interval(tally: Tally, alpha: float) -> tuple[float, float, float] | None:
    """(mean, lower, upper) of the absolute error, or None with nothing counted."""
    n = tally.requests
    if n <= 0:
        return None
    mean = (tally.total or 0.0) / n
    variance = max(0.0, (tally.squares or 0.0) / n - mean * mean) * n / max(1.0, n - 1)
    r = radius(n, variance, alpha)
    return mean, max(0.0, mean - r), mean + r


def _mae(
    metric: MetricSpec,
    previous: MetricEvidence | None,
    block: Block | None,
    alpha: float,
    min_requests: int,
) -> tuple[MetricResult, str]:
    before = previous or MetricEvidence()
    candidate = _tally(before.candidate, block.candidate if block else None)
    stable = _tally(before.stable, block.stable if block else None)
    relative = metric.max_above_stable is not None or metric.max_ratio_to_stable is not None
    limits = sum(x is not None for x in (metric.max, metric.max_above_stable,
                                         metric.max_ratio_to_stable))  # fmt: skip
    share = alpha / max(1, limits)
    name = metric.name
    outcomes: list[Outcome] = []
    mine = _interval(candidate, share / 2 if relative else share)
    theirs = _interval(stable, share / 2) if relative else None
    value, lower, upper = mine if mine else (None, None, None)
    if metric.max is not None:
        mine_max = _interval(candidate, share)
        outcomes.append(_against(name, mine_max, metric.max))
    if relative:
        outcomes.append(_relative(metric, mine, theirs))
        if mine and theirs:
            if metric.max_above_stable is not None:
                lower, upper = mine[1] - theirs[2], mine[2] - theirs[1]
            else:
                lower = mine[1] / theirs[2] if theirs[2] > 0 else None
                upper = mine[2] / theirs[1] if theirs[1] > 0 else None
    verdict, needs = combine(outcomes, candidate.requests, min_requests)
    result = MetricResult(
        name=name, value=value, stable_value=theirs[0] if theirs else None,
        lower=lower, upper=None if upper is None or math.isinf(upper) else upper,
        verdict=verdict, requests=candidate.requests, needs=needs,
        evidence=MetricEvidence(candidate=candidate, stable=stable if relative else None),
    )  # fmt: skip
    return result, reasons(outcomes)


def _against(name: str, mine: tuple[float, float, float] | None, limit: float) -> Outcome:
    if mine is None:
        return Outcome("Inconclusive", f"{name} <= {limit:g}: no feedback yet")
    mean, low, high = mine
    if low > limit:
        return Outcome("Fail", f"{name} {mean:.4g} breaks <= {limit:g} (confident)")
    if high <= limit:
        return Outcome("Pass")
    return Outcome("Inconclusive", f"{name} <= {limit:g}: not enough evidence")


def _relative(
    metric: MetricSpec,
    mine: tuple[float, float, float] | None,
    theirs: tuple[float, float, float] | None,
) -> Outcome:
    name = metric.name
    if metric.max_above_stable is not None:
        text, limit = f"stable + {metric.max_above_stable:g}", metric.max_above_stable
    else:
        assert metric.max_ratio_to_stable is not None
        text, limit = f"{metric.max_ratio_to_stable:g} x stable", metric.max_ratio_to_stable
    if mine is None or theirs is None:
        return Outcome("Inconclusive", f"{name} <= {text}: no feedback on both revisions yet")
    if metric.max_above_stable is not None:
        broken, kept = mine[1] - theirs[2] > limit, mine[2] - theirs[1] <= limit
    else:
        broken, kept = mine[1] > limit * theirs[2], mine[2] <= limit * theirs[1]
    if broken:
        return Outcome("Fail", f"{name} {mine[0]:.4g} breaks <= {text} (confident)")
    if kept:
        return Outcome("Pass")
    return Outcome("Inconclusive", f"{name} <= {text}: not enough evidence")
