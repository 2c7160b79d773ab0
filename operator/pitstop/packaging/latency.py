"""Latency buckets of Prometheus' native-histogram schema 3, shared by both sides.

The serving template counts `/predict` answer times per bucket for `GET /evidence`;
the operator's sequential judge turns bucket indices back into times. The classic
histogram's buckets grow 2-2.5x per step, too coarse to tell a p99 1.2x slower;
schema 3 grows by g = 2**(1/8) ~ 1.09 per step and is unbounded, so counts are kept
sparse. Bucket i holds times in (g**(i-1), g**i].

`index` runs on every request, so it avoids `log2` (whose rounding could put a time
on a bucket boundary one bucket off) and finds the bucket the way Prometheus'
client_golang does: the exponent from `frexp`, then a binary search of the mantissa
among the eight fractions of a power of two where buckets start. Those fractions are
client_golang's own constants, copied rather than computed, so an index here is the
index a Prometheus native histogram would give the same float. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import math

SCHEMA = 3
# client_golang's nativeHistogramBounds[3]: 2**(j/8) / 2 for j = 0..7.
_BOUNDS = (
    0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
    0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
)  # fmt: skip
_PER_POWER_OF_TWO = len(_BOUNDS)

# Below a microsecond a timer says little; such times (and 0, negative or NaN ones)
# share the microsecond's bucket, and times beyond about 12 days the last one.
MIN_SECONDS = 1e-6
MAX_SECONDS = 2.0**20


def _index(seconds: float) -> int:
    mantissa, exponent = math.frexp(seconds)  # seconds = mantissa * 2**exponent
    return bisect.bisect_left(_BOUNDS, mantissa) + (exponent - 1) * _PER_POWER_OF_TWO


MIN_INDEX = _index(MIN_SECONDS)
MAX_INDEX = _index(MAX_SECONDS)


def index(seconds: float) -> int:
    """The schema-3 bucket holding `seconds`: the i with g**(i-1) < seconds <= g**i."""
    if not seconds >= MIN_SECONDS:  # NaN too
        return MIN_INDEX
    if seconds > MAX_SECONDS:
        return MAX_INDEX
    return _index(seconds)


def upper_bound(i: int) -> float:
    """The largest time bucket `i` holds, g**i seconds (exact at powers of two)."""
    whole, part = divmod(i, _PER_POWER_OF_TWO)
    return math.ldexp(_BOUNDS[part] * 2, whole)
