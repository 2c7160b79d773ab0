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
    # ... but two slow ones in five do show that more than 1% are slow.
    found = bounds.quantile_bounds([(0.01, 3.0), (0.02, 2.0), (math.inf, 0.0)], 0.99, 0.01)
    assert (found.lower, found.upper) == (0.01, math.inf)
