"""Time-uniform confidence bounds for a proportion, and quantiles from bucket counts.

A confidence *sequence* holds at every moment at once: with probability at least
1 - alpha the true proportion lies inside the interval at all sample sizes, so the
analysis may look after every scrape and stop whenever it likes without inflating its
error. The construction is Robbins' beta-binomial mixture martingale (H. Robbins,
"Statistical methods related to the law of the iterated logarithm", Ann. Math. Stat.
41, 1970; see also Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Ann. Stat. 49, 2021, section 3):

    M_n(p) = B(a + k, b + n - k) / B(a, b) / (p^k (1 - p)^(n - k))

is a nonnegative martingale with mean 1 under Bernoulli(p) data, so by Ville's
inequality P(exists n: M_n(p) >= 1/alpha) <= alpha, and {p : M_n(p) < 1/alpha} is a
confidence sequence. It only needs the running counts (k of n), it is exact (no normal
approximation, which fails for rare errors), and counts need not be integers (PromQL's
increase() is not). The Jeffreys prior a = b = 1/2 keeps it tight near 0 and 1, where
error rates and tail shares live.

Quantile bounds use the classic order-statistics argument: the q-quantile is at most a
bucket bound b exactly when the share of observations above b is at most 1 - q, so a
test of that share against the one value 1 - q, at the one bucket that matters, bounds
the quantile. Because the count above b only falls as b grows, the tests at every
bucket move together and one error budget covers all of them (no union over buckets).
Those tests ask a narrower question than a confidence sequence answers — is the share
above, or below, one known value p0? — so each is a one-sided mixture of likelihood
ratios (every ratio of an alternative p1 > p0 to p0 is a nonnegative supermartingale
under any share <= p0, and so is their mixture; Ville's inequality then holds at every
look), with Beta priors on the alternatives' side only, one of them centred on p0. A p99 lives in
a tail of 1 %; a Jeffreys prior spreads its mass over all of 0..1, a prior centred on
p0 keeps it where the tail is, which reaches the same verdict on about half the
requests (tests/benchmarks/verdicts).

Pure: numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import betainc, betaincc, betaln

PRIOR = 0.5  # Jeffreys: Beta(1/2, 1/2)
_TINY = 1e-15


def log_martingale(p: float, k: float, n: float) -> float:
    """log M_n(p): the evidence against "the proportion is p" after k of n."""
    if n <= 0:
        return 0.0
    p = min(max(p, _TINY), 1.0 - _TINY)
    k = min(max(k, 0.0), n)
    mixture = betaln(PRIOR + k, PRIOR + n - k) - betaln(PRIOR, PRIOR)
    return float(mixture - k * math.log(p) - (n - k) * math.log1p(-p))


def excludes(p: float, k: float, n: float, alpha: float) -> bool:
    """Whether the confidence sequence at level 1 - alpha no longer contains p."""
    return log_martingale(p, k, n) >= math.log(1.0 / alpha)


def above(p: float, k: float, n: float, alpha: float) -> bool:
    """Confident that the proportion is above p."""
    return n > 0 and k / n > p and excludes(p, k, n, alpha)


def below(p: float, k: float, n: float, alpha: float) -> bool:
    """Confident that the proportion is below p."""
    return n > 0 and k / n < p and excludes(p, k, n, alpha)


def interval(k: float, n: float, alpha: float) -> tuple[float, float]:
    """The confidence sequence's interval after k of n (0..1 before any data)."""
    lower, upper = intervals(np.array([k], dtype=float), np.array([n], dtype=float), alpha)
    return float(lower[0]), float(upper[0])


def intervals(
    k: np.ndarray, n: np.ndarray, alpha: float | np.ndarray, iterations: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """`interval` for many counts at once.

    log M_n(p) = C - k log p - (n - k) log(1 - p) with C independent of p, so each end
    solves k log p + (n - k) log(1 - p) = C - log(1/alpha) on its side of k / n.
    """
    n = np.maximum(np.asarray(n, dtype=float), 0.0)
    k = np.clip(np.asarray(k, dtype=float), 0.0, n)
    level = betaln(PRIOR + k, PRIOR + n - k) - betaln(PRIOR, PRIOR) + np.log(alpha)
    lower = _far_end(n - k, k, level, iterations)
    upper = 1.0 - _far_end(k, n - k, level, iterations)
    empty = n <= 0
    return np.where(empty, 0.0, lower), np.where(empty, 1.0, upper)


def _far_end(a: np.ndarray, b: np.ndarray, level: np.ndarray, iterations: int) -> np.ndarray:
    """The smallest probability P with a log(1 - P) + b log P above `level` (0 if none).

    In x = log P the left side is concave and rises until P = b / (a + b), so Newton's
    method started far to the left climbs to the crossing without overshooting it.
    """
    x = np.full(np.shape(level), math.log(_TINY))

    def phi(x: np.ndarray) -> np.ndarray:
        return np.asarray(a * np.log1p(-np.exp(x)) + b * x)

    open_end = (b <= 0) | (phi(x) >= level)
    top = np.log(np.maximum(b, _TINY) / np.maximum(a + b, _TINY))
    for _ in range(iterations):
        slope = b - a * np.exp(x) / -np.expm1(x)
        step = (level - phi(x)) / np.where(slope > 0, slope, 1.0)
        x = np.minimum(x + np.maximum(step, 0.0), top)
    return np.where(open_end, 0.0, np.exp(x))


@dataclass(frozen=True)
class QuantileBounds:
    """Where the q-quantile lies: above `lower` and at most `upper` (bucket bounds)."""

    lower: float
    upper: float
    estimate: float | None


def one_sided(p0: float, k: np.ndarray, n: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Whether each count k of n is confidently (above, below) the share p0."""
    up, down = one_sided_evidence(p0, k, n)
    need = math.log(1.0 / alpha)
    return up >= need, down >= need


def one_sided_evidence(
    p0: float | np.ndarray, k: float | np.ndarray, n: float
) -> tuple[np.ndarray, np.ndarray]:
    """The log e-values that each share behind k of n is (above, below) p0 (0 on the
    side its estimate is not on, and before any data).

    E = the mixture, over p1 on one side of p0 under a Beta(a, b) prior restricted to
    that side, of p1^k (1 - p1)^(n - k) / (p0^k (1 - p0)^(n - k)): a Beta integral,
    B(a + k, b + n - k) / B(a, b) times the incomplete-beta share of that side, over the
    prior's own share of it. Two priors, averaged: one with mean p0 (Jeffreys' shape),
    which is quick on shares near p0, and Jeffreys' own, which is quick on shares far
    from it (two slow answers in five) — the average costs at most log 2 against the
    better of them. Each side is tested only where its estimate lies (k / n beyond p0),
    where the incomplete beta is not vanishingly small. Shares p0 and counts k
    broadcast against each other.
    """
    k, p0 = np.asarray(k, dtype=float), np.asarray(p0, dtype=float)
    if n <= 0:
        shape = np.broadcast(k, p0).shape
        return np.zeros(shape), np.zeros(shape)
    share = np.clip(k, 0.0, n) / n
    above, below = share > p0, share < p0  # the limit as given: no share is above 1
    p0 = np.clip(p0, _TINY, 1.0 - _TINY)
    k = share * n
    null = -k * np.log(p0) - (n - k) * np.log1p(-p0)
    up, down = [], []
    for a, b in ((PRIOR, PRIOR * (1.0 - p0) / p0), (PRIOR, PRIOR)):
        base = betaln(a + k, b + n - k) - betaln(a, b) + null
        with np.errstate(divide="ignore", invalid="ignore"):
            up.append(base + np.log(betaincc(a + k, b + n - k, p0)) - np.log(betaincc(a, b, p0)))
            down.append(base + np.log(betainc(a + k, b + n - k, p0)) - np.log(betainc(a, b, p0)))
    mean = -math.log(2.0)  # the mean of two e-values
    with np.errstate(invalid="ignore"):
        return (
            np.where(above, np.logaddexp(*up) + mean, 0.0),
            np.where(below, np.logaddexp(*down) + mean, 0.0),
        )


def one_sided_bounds(k: float, n: float, alpha: float) -> tuple[float, float]:
    """The shares the one-sided tests have ruled out after k of n: every share below
    `lower` is confidently exceeded, every share above `upper` confidently undercut,
    each at level alpha and at every look.

    The inversion of `one_sided_evidence`, so it agrees with the verdicts drawn from
    it: a limit those tests say is broken lies outside this interval, one they say is
    kept lies outside on the other side. (Robbins' interval, `interval`, is wider, and
    could show a broken limit still inside.) Each side's evidence only falls as p0
    nears k / n (tests/unit/analysis/test_bounds.py checks it), so each end is one root
    — in log p0 below the estimate, in log(1 - p0) above it, where rare shares live.
    """
    if n <= 0:
        return 0.0, 1.0
    k = min(max(k, 0.0), n)
    estimate, need = k / n, math.log(1.0 / alpha)

    def up(x: float) -> float:  # x = log p0
        return float(one_sided_evidence(math.exp(x), k, n)[0]) - need

    def down(x: float) -> float:  # x = log(1 - p0)
        return float(one_sided_evidence(-math.expm1(x), k, n)[1]) - need

    edge = math.log(_TINY)
    lower, upper = 0.0, 1.0
    if estimate > 0 and up(edge) >= 0:
        lower = math.exp(_crossing(up, edge, math.log(estimate)))
    if estimate < 1 and down(edge) >= 0:
        upper = -math.expm1(_crossing(down, edge, math.log1p(-estimate)))
    return lower, upper


def _crossing(evidence: Callable[[float], float], near: float, far: float) -> float:
    """The first point from `near` (evidence >= 0) towards `far` (< 0) where the
    evidence falls short: Brent's root, then stepped towards `far` until it is not ruled
    out, so the interval errs wide (by about 1e-12), never narrow."""
    x = float(brentq(evidence, near, far, xtol=1e-12, rtol=1e-12))
    step = 1e-12 * (far - near)
    while evidence(x) >= 0:
        x, step = x + step, 2 * step
    return min(x, far)


def quantile_bounds(
    buckets: Sequence[tuple[float, float]], q: float, alpha: float
) -> QuantileBounds:
    """Time-uniform bounds on the q-quantile from per-bucket counts.

    `buckets` are (upper bound, count in that bucket) in ascending order of bound; the
    last bound may be +inf. `lower` is 0 and `upper` +inf while the data cannot say.
    The two bounds are tested at alpha each.
    """
    estimate = quantile(buckets, q)
    finite = [(b, c) for b, c in buckets if math.isfinite(b)]
    total = float(sum(c for _, c in buckets))
    if not finite or total <= 0:
        return QuantileBounds(0.0, math.inf, estimate)
    bounds_ = [b for b, _ in finite]
    slower = total - np.cumsum([c for _, c in finite])  # observations above each bound
    tail = 1.0 - q

    def above(i: int) -> bool:
        return bool(one_sided(tail, slower[i : i + 1], total, alpha)[0][0])

    def below(i: int) -> bool:
        return bool(one_sided(tail, slower[i : i + 1], total, alpha)[1][0])

    # Fewer slow answers at every higher bound, and each test's evidence only grows
    # with the count on its side: "above" holds on a prefix of the bounds, "below" on
    # a suffix, so a bisection finds each end in a few tests instead of one per bucket.
    first_not_above = _first(lambda i: not above(i), len(bounds_))
    first_below = _first(below, len(bounds_))
    lower = bounds_[first_not_above - 1] if first_not_above > 0 else 0.0
    upper = bounds_[first_below] if first_below < len(bounds_) else math.inf
    return QuantileBounds(lower, upper, estimate)


def _first(holds: Callable[[int], bool], size: int) -> int:
    """The first i in 0..size at which a monotone `holds` turns true (size if never)."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return low


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile interpolated inside its bucket, as Prometheus'
    histogram_quantile does (a point estimate for people, not for verdicts)."""
    total = sum(count for _, count in buckets)
    if total <= 0:
        return None
    rank = q * total
    seen, lower_bound = 0.0, 0.0
    for bound, count in buckets:
        if count > 0 and seen + count >= rank:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - seen) / count
        seen += count
        lower_bound = bound if not math.isinf(bound) else lower_bound
    return lower_bound
