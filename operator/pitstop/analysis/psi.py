"""Bounds on the population stability index (PSI) of live inputs against training data.

A PSI computed from a few dozen rows is mostly noise: with ten bins its expected value
on data drawn *exactly* from the training distribution is about (bins - 1) / rows, 0.18
at 50 rows, so a fixed `max: 0.2` raises alarms on healthy traffic. Here the live share
of each bin gets a time-uniform confidence interval (`bounds.interval`, with the error
budget split over the bins), and the PSI is bounded over every distribution those
intervals allow: the smallest value is a lower bound on the true PSI (a Fail needs it
above the limit), the largest an upper bound (a Pass needs it within). Both bounds are
relaxed (the bins' shares are not forced to sum to one), which only makes them wider,
never wrong. The point estimate shown to people has the small-sample bias removed.

Shares are floored at `EPSILON` exactly as the serving template's PSI does
(`pitstop.packaging.drift`), so both speak of the same number.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pitstop.analysis import bounds

EPSILON = 1e-4  # as pitstop.packaging.drift.EPSILON


@dataclass(frozen=True)
class PsiBounds:
    estimate: float | None
    lower: float
    upper: float
    rows: float


def _term(share: float, expected: float) -> float:
    a, e = max(share, EPSILON), max(expected, EPSILON)
    return (a - e) * math.log(a / e)


def psi_bounds(expected: Sequence[float], counts: Sequence[float], alpha: float) -> PsiBounds:
    """Bounds on one feature's PSI that hold at level 1 - alpha, at every sample size."""
    rows = float(sum(counts))
    if rows <= 0 or not expected:
        return PsiBounds(None, 0.0, math.inf, rows)
    per_bin = alpha / len(expected)
    lower = upper = observed = 0.0
    for share, count in zip(expected, counts, strict=True):
        low, high = bounds.interval(count, rows, per_bin)
        observed += _term(count / rows, share)
        # Each term is convex in the live share with its minimum at the training share.
        lower += _term(min(max(share, low), high), share)
        upper += max(_term(low, share), _term(high, share))
    unbiased = max(0.0, observed - (len(expected) - 1) / rows)
    return PsiBounds(unbiased, lower, upper, rows)
