"""Judge covariate drift: the candidate's live inputs against its own training profile.

The metric is the largest per-feature PSI. It fails when confident some feature's PSI
is above `max` and passes when confident every feature's is within it (`psi`); the
budget is split over the features. The evidence is each feature's rows per profile bin,
summed over the looks. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pitstop.analysis import psi
from pitstop.analysis.outcome import Outcome, combine, reasons
from pitstop.api.spec import MetricSpec
from pitstop.api.status import MetricEvidence, MetricResult, Tally


@dataclass(frozen=True)
class Block:
    bins: Mapping[str, tuple[float, ...]]
    expected: Mapping[str, tuple[float, ...]]


def _merge(evidence: MetricEvidence, block: Block) -> MetricEvidence:
    bins = dict(evidence.candidate.bins or {})
    expected = dict(evidence.expected or {})
    for name, counts in block.bins.items():
        shares = list(block.expected.get(name, ()))
        if len(shares) != len(counts):
            continue  # a server that cannot say what its bins mean adds nothing
        old = bins.get(name)
        if old is None or len(old) != len(counts) or expected.get(name) != shares:
            old = [0.0] * len(counts)  # the profile changed: start over for this feature
        bins[name] = [a + b for a, b in zip(old, counts, strict=True)]
        expected[name] = shares
    rows = max((sum(c) for c in bins.values()), default=0.0)
    return MetricEvidence(candidate=Tally(requests=rows, bins=bins), expected=expected)


def judge(
    metric: MetricSpec,
    previous: MetricEvidence | None,
    block: Block | None,
    alpha: float,
    min_requests: int,
) -> tuple[MetricResult, str]:
    evidence = previous or MetricEvidence()
    if block is not None:
        evidence = _merge(evidence, block)
    bins, expected = evidence.candidate.bins or {}, evidence.expected or {}
    limit = metric.max
    assert limit is not None, "CEL: drift takes max only"
    if not bins:
        outcome = Outcome("Inconclusive", f"{metric.name}: no drift evidence yet")
        return MetricResult(name=metric.name, verdict="Inconclusive", evidence=evidence), (
            outcome.reason
        )
    share = alpha / len(bins)
    found = psi.many({name: (expected[name], counts) for name, counts in bins.items()}, share)
    worst = max(found, key=lambda name: found[name].lower)
    rows = evidence.candidate.requests
    if found[worst].lower > limit:
        outcome = Outcome("Fail", f"{metric.name}: feature {worst} PSI above {limit:g} "
                          f"(at least {found[worst].lower:.3g}, confident)")  # fmt: skip
    elif all(b.upper <= limit for b in found.values()):
        outcome = Outcome("Pass")
    else:
        unsure = max(found, key=lambda name: found[name].upper)
        outcome = Outcome(
            "Inconclusive", f"{metric.name}: PSI of {unsure} not yet confidently within "
            f"{limit:g}", _needs(found[unsure], limit),
        )  # fmt: skip
    verdict, needs = combine([outcome], rows, min_requests)
    estimates = [b.estimate for b in found.values() if b.estimate is not None]
    uppers = [b.upper for b in found.values()]
    result = MetricResult(
        name=metric.name, value=max(estimates) if estimates else None,
        lower=max(b.lower for b in found.values()),
        upper=max(uppers) if all(math.isfinite(u) for u in uppers) else None,
        verdict=verdict, requests=rows, needs=needs, evidence=evidence,
    )  # fmt: skip
    return result, reasons([outcome])


def _needs(found: psi.PsiBounds, limit: float) -> int | None:
    """Rough: the interval narrows like 1/sqrt(rows)."""
    if found.estimate is None or not math.isfinite(found.upper) or found.rows <= 0:
        return None
    distance = abs(found.estimate - limit)
    width = max(found.upper - found.estimate, found.estimate - found.lower)
    if distance <= 1e-9:
        return None
    return max(1, math.ceil(found.rows * (width / distance) ** 2 - found.rows))
