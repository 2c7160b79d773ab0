"""Time-uniform bounds on a proportion and on quantiles from bucket counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pitstop.analysis import bounds


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (40, 4000), (2.5, 7.5)])
def test_interval_contains_the_estimate_and_its_ends_sit_on_the_boundary(
    k: float, n: float
) -> None:
    lower, upper = bounds.interval(k, n, 0.01)
    assert lower <= k / n <= upper
    for end in (lower, upper):
        if 0 < end < 1:
            assert bounds.log_martingale(end, k, n) == pytest.approx(math.log(100), abs=1e-6)


def test_interval_narrows_as_evidence_grows() -> None:
    widths = [np.subtract(*bounds.interval(0.01 * n, n, 0.01)[::-1]) for n in (100, 1000, 10000)]
    assert widths[0] > widths[1] > widths[2]


def test_a_true_proportion_is_left_out_at_most_alpha_of_the_time_ever() -> None:
    """Ville's inequality: looking after every observation costs no coverage."""
    rng = np.random.default_rng(7)
    alpha, p, runs, missed = 0.1, 0.03, 300, 0
    for _ in range(runs):
        k = 0
        for n in range(1, 400):
            k += rng.random() < p
            if bounds.excludes(p, k, n, alpha):
                missed += 1
                break
    assert missed <= alpha * runs


def test_above_and_below_need_the_estimate_on_their_side() -> None:
    assert bounds.above(0.05, 30, 100, 0.01)
    assert not bounds.below(0.05, 30, 100, 0.01)
    assert bounds.below(0.05, 0, 1000, 0.01)
    assert not bounds.above(0.05, 6, 100, 0.01)  # 6% is not confidently above 5%


def buckets_of(values: np.ndarray, edges: list[float]) -> list[tuple[float, float]]:
    counts = np.histogram(values, bins=[0.0, *edges, math.inf])[0]
    return list(zip([*edges, math.inf], counts.astype(float), strict=True))


def test_quantile_bounds_bracket_the_true_quantile() -> None:
    rng = np.random.default_rng(3)
    edges = [0.001 * 1.09**i for i in range(80)]
    values = rng.lognormal(mean=-5, sigma=0.5, size=20000)
    true_p99 = math.exp(-5 + 0.5 * 2.3263)
    found = bounds.quantile_bounds(buckets_of(values, edges), 0.99, 0.01)
    assert found.lower < true_p99 <= found.upper
    assert found.upper / found.lower < 1.5  # tight with this much data
    assert found.estimate == pytest.approx(true_p99, rel=0.1)


def test_quantile_bounds_say_nothing_on_too_little_data() -> None:
    # Five fast answers cannot show that 99% of answers are fast ...
    found = bounds.quantile_bounds([(0.01, 5.0), (0.02, 0.0), (math.inf, 0.0)], 0.99, 0.01)
    assert (found.lower, found.upper) == (0.0, math.inf)
    # ... but three slow ones in six do show that more than 1% are slow.
    found = bounds.quantile_bounds([(0.01, 3.0), (0.02, 3.0), (math.inf, 0.0)], 0.99, 0.01)
    assert (found.lower, found.upper) == (0.01, math.inf)


@pytest.mark.parametrize("side", [0, 1])
def test_a_one_sided_test_at_the_true_share_errs_at_most_alpha_of_the_time_ever(side: int) -> None:
    """Ville's inequality for the one-sided mixtures: a share exactly p0, looked at after
    every observation, is called above (or below) p0 in at most alpha of the runs."""
    rng = np.random.default_rng(11 + side)
    alpha, p0, runs, steps = 0.1, 0.05, 400, 2000
    draws = rng.random((runs, steps)) < p0
    counts = np.cumsum(draws, axis=1)
    wrong = np.zeros(runs, bool)  # ever called wrong, run by run
    for n in range(1, steps + 1, 5):
        wrong |= bounds.one_sided(p0, counts[:, n - 1], n, alpha)[side]
    assert wrong.sum() <= alpha * runs


def test_one_sided_tests_see_a_clear_difference() -> None:
    above, below = bounds.one_sided(0.01, np.array([0.0, 10.0, 30.0]), 1000, 0.01)
    assert list(above) == [False, False, True]
    assert list(below) == [True, False, False]
    above, below = bounds.one_sided(0.01, np.array([0.0, 5.0]), 500, 0.01)
    assert not above.any()
    assert not below.any()  # 0 of 500 is not yet below 1% at 99%


def test_one_sided_evidence_only_falls_as_the_share_nears_the_estimate() -> None:
    """What `one_sided_bounds` relies on to find each end as one root."""
    rng = np.random.default_rng(5)
    shares = np.exp(np.linspace(math.log(1e-7), math.log(1 - 1e-7), 400))
    for _ in range(200):
        n = float(rng.choice([5, 50, 400, 5000, 100000]) * rng.uniform(0.5, 1.5))
        k = rng.uniform(0, n) * float(rng.choice([1, 0.1, 0.001]))
        up, down = bounds.one_sided_evidence(shares, k, n)
        assert np.all(np.diff(up[shares < k / n]) <= 1e-9), (k, n)
        assert np.all(np.diff(down[shares > k / n]) >= -1e-9), (k, n)


def test_one_sided_bounds_agree_with_the_one_sided_verdicts() -> None:
    """A share the tests call exceeded lies below `lower`, one they call undercut above
    `upper`, and no share they cannot tell apart lies outside (beyond rounding)."""
    rng = np.random.default_rng(9)
    for _ in range(300):
        n = float(rng.choice([20, 45, 300, 4000]) * rng.uniform(0.5, 1.5))
        k = rng.uniform(0, n) * float(rng.choice([1, 0.1, 0.01]))
        alpha = float(rng.choice([0.1, 0.01, 0.0025]))
        lower, upper = bounds.one_sided_bounds(k, n, alpha)
        assert 0 <= lower <= k / n <= upper <= 1
        for p0 in rng.uniform(0, 1, 20) ** 3:
            above, below = (bool(x[0]) for x in bounds.one_sided(p0, np.array([k]), n, alpha))
            assert above == (p0 < lower) or math.isclose(p0, lower, rel_tol=1e-9), (k, n, p0)
            assert below == (p0 > upper) or math.isclose(p0, upper, rel_tol=1e-9), (k, n, p0)


def test_one_sided_bounds_are_narrower_than_the_confidence_sequence() -> None:
    """Why the absolute limits show them: 9 errors in 45 answers rule out 5 % at 99 %
    one-sidedly, but Robbins' interval still holds it."""
    lower, _ = bounds.one_sided_bounds(9, 45, 0.01)
    assert lower > 0.05 > bounds.interval(9, 45, 0.01)[0]
    assert bounds.one_sided_bounds(0, 0, 0.01) == (0.0, 1.0)
    assert bounds.one_sided_bounds(0, 100, 0.01)[0] == 0.0
    assert bounds.one_sided_bounds(100, 100, 0.01)[1] == 1.0


def test_quantile_bounds_use_the_tail_better_than_a_confidence_sequence() -> None:
    """The same 5,000 answers bound a p99 more tightly with the tail-centred one-sided
    tests than with the two-sided confidence sequence at the same error (which would
    need the sequence's lower and upper ends, each at alpha)."""
    rng = np.random.default_rng(5)
    edges = [0.001 * 2 ** (i / 32) for i in range(400)]
    buckets = buckets_of(rng.lognormal(mean=-5, sigma=0.5, size=5000), edges)
    found = bounds.quantile_bounds(buckets, 0.99, 0.001)
    slower = sum(c for _, c in buckets) - np.cumsum([c for _, c in buckets])
    lower, upper = bounds.intervals(slower, np.full(len(slower), 5000.0), 0.002)
    old_lower = max((b for (b, _), lo in zip(buckets, lower, strict=True) if lo > 0.01), default=0)
    old_upper = min((b for (b, _), hi in zip(buckets, upper, strict=True) if hi < 0.01))
    assert old_lower <= found.lower < found.upper <= old_upper
    assert found.upper / found.lower < old_upper / old_lower


def test_quantile_bounds_bisection_finds_what_testing_every_bucket_finds() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(5, 20000))
        values = rng.lognormal(-5, 0.5, n)
        indices, counts = np.unique(np.ceil(np.log2(values) * 32).astype(int), return_counts=True)
        buckets = [(2 ** (i / 32), float(c)) for i, c in zip(indices, counts, strict=True)]
        found = bounds.quantile_bounds(buckets, 0.99, 0.001)
        slower = n - np.cumsum(counts)
        above, below = bounds.one_sided(0.01, slower, n, 0.001)
        edges = [b for b, _ in buckets]
        assert found.lower == (edges[np.flatnonzero(above).max()] if above.any() else 0.0)
        assert found.upper == (edges[np.flatnonzero(below).min()] if below.any() else math.inf)
