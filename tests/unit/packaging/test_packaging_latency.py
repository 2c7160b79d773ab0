"""Native-histogram latency buckets: in schema s bucket i holds (g**(i-1), g**i],
g = 2**(2**-s); the template counts in schema 5, older images sent schema 3."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pitstop.packaging import latency

# client_golang's exponentialBounds[3], which the strided schema-5 table must give back.
SCHEMA_3 = (
    0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
    0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
)  # fmt: skip


def test_schema_3_is_every_fourth_bound_of_schema_5() -> None:
    assert tuple(latency.upper_bound(i, 3) / 2 for i in range(8)) == SCHEMA_3
    for i in range(-100, 100):
        assert latency.upper_bound(i, 3) == latency.upper_bound(4 * i, 5)


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
def test_known_times_fall_in_their_schema_3_bucket(seconds: float, bucket: int) -> None:
    assert latency.index(seconds, 3) == bucket
    # 2**(i/8), not G**i: that is exact at powers of two, where G**i is off by a bit.
    assert 2 ** ((bucket - 1) / 8) < seconds <= 2 ** (bucket / 8)


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(1.0, 0), (1.02, 1), (1.03, 2), (2.0, 32), (0.005, -244), (0.0049, -245)],
)
def test_known_times_fall_in_their_schema_5_bucket(seconds: float, bucket: int) -> None:
    assert latency.index(seconds) == bucket
    assert 2 ** ((bucket - 1) / 32) < seconds <= 2 ** (bucket / 32)


@pytest.mark.parametrize("schema", latency.SCHEMAS)
@pytest.mark.parametrize("power", range(-19, 20))
def test_a_power_of_two_closes_its_bucket(schema: int, power: int) -> None:
    per = 2**schema
    exact = 2.0**power
    assert latency.index(exact, schema) == per * power
    assert latency.index(math.nextafter(exact, math.inf), schema) == per * power + 1
    assert latency.index(math.nextafter(exact, 0.0), schema) == per * power


@pytest.mark.parametrize("schema", latency.SCHEMAS)
def test_every_upper_bound_is_in_its_bucket_and_the_next_float_is_not(schema: int) -> None:
    per = 2**schema
    for i in range(latency.min_index(schema) + 1, latency.max_index(schema)):
        bound = latency.upper_bound(i, schema)
        assert bound == pytest.approx(2 ** (i / per), rel=1e-15)
        assert latency.index(bound, schema) == i
        assert latency.index(math.nextafter(bound, 0.0), schema) == i
        assert latency.index(math.nextafter(bound, math.inf), schema) == i + 1


@pytest.mark.parametrize("schema", latency.SCHEMAS)
def test_away_from_boundaries_it_is_ceil_of_log2_times_2_to_the_schema(schema: int) -> None:
    times = 10 ** np.random.default_rng(0).uniform(-6, 4, 20_000)
    for t in times:
        exact = math.log2(t) * 2**schema
        if abs(exact - round(exact)) > 1e-6:
            assert latency.index(float(t), schema) == math.ceil(exact)


@pytest.mark.parametrize("schema", latency.SCHEMAS)
@pytest.mark.parametrize("seconds", [0.0, -1.0, 1e-9, math.nan, math.nextafter(1e-6, 0.0)])
def test_tiny_zero_negative_and_nan_times_share_the_microsecond_bucket(
    schema: int, seconds: float
) -> None:
    assert latency.index(seconds, schema) == latency.min_index(schema)
    assert latency.min_index(schema) == latency.index(1e-6, schema)
    assert math.ceil(math.log2(1e-6) * 2**schema) == latency.min_index(schema)


@pytest.mark.parametrize("seconds", [2.0**20, 1e9, math.inf])
def test_absurdly_long_times_share_the_last_bucket(seconds: float) -> None:
    assert latency.index(seconds, 3) == latency.max_index(3) == 160
    assert latency.index(seconds) == latency.max_index() == 640
