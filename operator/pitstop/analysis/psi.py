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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pitstop.analysis import bounds

EPSILON = 1e-4  # as pitstop.packaging.drift.EPSILON


@dataclass(frozen=True)
class PsiBounds:
    estimate: float | None
    lower: float
    upper: float
    rows: float


def psi_bounds(expected: Sequence[float], counts: Sequence[float], alpha: float) -> PsiBounds:
    """Bounds on one feature's PSI that hold at level 1 - alpha, at every sample size."""
    return many({"": (expected, counts)}, alpha)[""]


def many(
    features: Mapping[str, tuple[Sequence[float], Sequence[float]]], alpha: float
) -> dict[str, PsiBounds]:
    """`psi_bounds` of several features (expected shares, counts) at once, each at
    level 1 - alpha: one vectorised pass over every bin."""
    names = [n for n, (e, c) in features.items() if e and sum(c) > 0]
    found: dict[str, PsiBounds] = {
        n: PsiBounds(None, 0.0, math.inf, float(sum(c)))
        for n, (e, c) in features.items()
        if n not in names
    }
    if not names:
        return found
    shares = np.concatenate([np.asarray(features[n][0], dtype=float) for n in names])
    counts = np.concatenate([np.asarray(features[n][1], dtype=float) for n in names])
    sizes = [len(features[n][0]) for n in names]
    rows = np.repeat([float(sum(features[n][1])) for n in names], sizes)
    per_bin = np.repeat([alpha / size for size in sizes], sizes)
    low, high = bounds.intervals(counts, rows, per_bin)
    observed = _terms(counts / rows, shares)
    # Each term is convex in the live share with its minimum at the training share.
    lower = _terms(np.clip(shares, low, high), shares)
    upper = np.maximum(_terms(low, shares), _terms(high, shares))
    start = 0
    for name, size in zip(names, sizes, strict=True):
        part = slice(start, start + size)
        total = float(rows[start])
        unbiased = max(0.0, float(observed[part].sum()) - (size - 1) / total)
        found[name] = PsiBounds(unbiased, float(lower[part].sum()), float(upper[part].sum()),
                                total)  # fmt: skip
        start += size
    return found


def _terms(live: np.ndarray, expected: np.ndarray) -> np.ndarray:
    a, e = np.maximum(live, EPSILON), np.maximum(expected, EPSILON)
    return np.asarray((a - e) * np.log(a / e))
