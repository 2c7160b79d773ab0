"""Schema-3 latency buckets: bucket i holds (g**(i-1), g**i], g = 2**(1/8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pitstop.packaging import latency


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (1.0, 0),  # (1/g, 1]
        (1.05, 1),  # (1, g ~ 1.0905]
        (1.1, 2),
        (2.0, 8),
        (0.5, -8),
        (0.001, -79),  # 2**(-79/8) ~ 0.00105
        (0.0009, -80),
        (0.25, -16),
        (60.0, 48),  # 2**6 = 64 > 60 > 2**(47/8) ~ 58.7
    ],
)
def test_known_times_fall_in_their_bucket(seconds: float, bucket: int) -> None:
    assert latency.index(seconds) == bucket
    # 2**(i/8), not G**i: that is exact at powers of two, where G**i is off by a bit.
    assert 2 ** ((bucket - 1) / 8) < seconds <= 2 ** (bucket / 8)


@pytest.mark.parametrize("power", range(-19, 20))
def test_a_power_of_two_closes_its_bucket(power: int) -> None:
    exact = 2.0**power
    assert latency.index(exact) == 8 * power
    assert latency.index(math.nextafter(exact, math.inf)) == 8 * power + 1
    assert latency.index(math.nextafter(exact, 0.0)) == 8 * power


def test_every_upper_bound_is_in_its_bucket_and_the_next_float_is_not() -> None:
    for i in range(latency.MIN_INDEX + 1, latency.MAX_INDEX):
        bound = latency.upper_bound(i)
        assert bound == pytest.approx(2 ** (i / 8), rel=1e-15)
        assert latency.index(bound) == i
        assert latency.index(math.nextafter(bound, 0.0)) == i
        assert latency.index(math.nextafter(bound, math.inf)) == i + 1


def test_away_from_boundaries_it_is_ceil_of_log2_times_8() -> None:
    times = 10 ** np.random.default_rng(0).uniform(-6, 4, 20_000)
    for t in times:
        exact = math.log2(t) * 8
        if abs(exact - round(exact)) > 1e-6:
            assert latency.index(float(t)) == math.ceil(exact)


@pytest.mark.parametrize("seconds", [0.0, -1.0, 1e-9, math.nan, math.nextafter(1e-6, 0.0)])
def test_tiny_zero_negative_and_nan_times_share_the_microsecond_bucket(seconds: float) -> None:
    assert latency.index(seconds) == latency.MIN_INDEX == latency.index(1e-6)
    assert math.ceil(math.log2(1e-6) * 8) == latency.MIN_INDEX


@pytest.mark.parametrize("seconds", [2.0**20, 1e9, math.inf])
def test_absurdly_long_times_share_the_last_bucket(seconds: float) -> None:
    assert latency.index(seconds) == latency.MAX_INDEX == 160
