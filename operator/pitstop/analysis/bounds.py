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
bound on that share at the one bucket that matters bounds the quantile. Because the
count above b only falls as b grows, the bounds at every bucket move together and one
confidence sequence covers all of them (no union over buckets).

Pure: numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.optimize import brentq
from scipy.special import betaln

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
    if n <= 0:
        return 0.0, 1.0
    estimate = min(max(k / n, 0.0), 1.0)
    threshold = math.log(1.0 / alpha)

    def gap(p: float) -> float:
        return log_martingale(p, k, n) - threshold

    lower = 0.0
    if estimate > _TINY and gap(_TINY) > 0:
        lower = float(brentq(gap, _TINY, estimate))
    upper = 1.0
    if estimate < 1.0 - _TINY and gap(1.0 - _TINY) > 0:
        upper = float(brentq(gap, estimate, 1.0 - _TINY))
    return lower, upper


@dataclass(frozen=True)
class QuantileBounds:
    """Where the q-quantile lies: above `lower` and at most `upper` (bucket bounds)."""

    lower: float
    upper: float
    estimate: float | None


def quantile_bounds(
    buckets: Sequence[tuple[float, float]], q: float, alpha: float
) -> QuantileBounds:
    """Time-uniform bounds on the q-quantile from per-bucket counts.

    `buckets` are (upper bound, count in that bucket) in ascending order of bound; the
    last bound may be +inf. `lower` is 0 and `upper` +inf while the data cannot say.
    """
    total = sum(count for _, count in buckets)
    tail_share = 1.0 - q
    lower, upper = 0.0, math.inf
    above_bound = total
    for bound, count in buckets:
        above_bound -= count  # observations slower than `bound`
        if math.isinf(bound):
            break
        if above(tail_share, above_bound, total, alpha):
            lower = bound  # more than 1 - q are slower: the quantile is above it
        elif upper == math.inf and below(tail_share, above_bound, total, alpha):
            upper = bound
    return QuantileBounds(lower, upper, quantile(buckets, q))


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
