"""Latency buckets of Prometheus' native-histogram schemas, shared by both sides.

The serving template counts `/predict` answer times per bucket for `GET /evidence`;
the operator's sequential judge turns bucket indices back into times. The classic
histogram's buckets grow 2-2.5x per step, too coarse to tell a p99 1.2x slower.
Schema s grows by g = 2**(2**-s) per step and is unbounded, so counts are kept sparse;
bucket i holds times in (g**(i-1), g**i]. The template counts in schema 5 (g ~ 1.022):
a quantile bound can only sit on a bucket bound, so a candidate's and a stable's
bounds each lose up to a bucket, and at schema 3 (g ~ 1.09, what older images
send, still read) those two buckets ate most of a 1.2x limit's room; at schema 5 they
cost about 4 %.

`index` runs on every request, so it avoids `log2` (whose rounding could put a time
on a bucket boundary one bucket off) and finds the bucket the way Prometheus'
client_golang does: the exponent from `frexp`, then a binary search of the mantissa
among the fractions of a power of two where buckets start. Those fractions are
client_golang's own constants (its `exponentialBounds`; a lower schema's are every
2**(5 - s)-th of schema 5's), so an index here is the index a Prometheus native
histogram would give the same float. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import math

SCHEMA = 5
SCHEMAS = (3, 5)  # what /evidence may carry: 5 now, 3 from older images
# client_golang's exponentialBounds[5]: 2**(j/32) / 2 for j = 0..31.
_BOUNDS_5 = (
    0.5, 0.5109485743270583, 0.5221368912137069, 0.5335702003384117,
    0.5452538663326288, 0.5571933712979462, 0.5693943173783458, 0.5818624293887887,
    0.5946035575013605, 0.6076236799902344, 0.620928906036742, 0.6345254785958666,
    0.6484197773255048, 0.6626183215798706, 0.6771277734684463, 0.6919549409819159,
    0.7071067811865475, 0.7225904034885232, 0.7384130729697496, 0.7545822137967112,
    0.7711054127039704, 0.7879904225539431, 0.805245165974627, 0.8228777390769823,
    0.8408964152537144, 0.8593096490612387, 0.8781260801866495, 0.8973545375015533,
    0.9170040432046711, 0.9370838170551498, 0.9576032806985735, 0.9785720620876999,
)  # fmt: skip
_BOUNDS = {schema: _BOUNDS_5[:: 2 ** (5 - schema)] for schema in SCHEMAS}

# Below a microsecond a timer says little; such times (and 0, negative or NaN ones)
# share the microsecond's bucket, and times beyond about 12 days the last one.
MIN_SECONDS = 1e-6
MAX_SECONDS = 2.0**20


def _index(seconds: float, schema: int) -> int:
    bounds = _BOUNDS[schema]
    mantissa, exponent = math.frexp(seconds)  # seconds = mantissa * 2**exponent
    return bisect.bisect_left(bounds, mantissa) + (exponent - 1) * len(bounds)


def min_index(schema: int = SCHEMA) -> int:
    return _index(MIN_SECONDS, schema)


def max_index(schema: int = SCHEMA) -> int:
    return _index(MAX_SECONDS, schema)


def index(seconds: float, schema: int = SCHEMA) -> int:
    """The bucket holding `seconds`: the i with g**(i-1) < seconds <= g**i."""
    if not seconds >= MIN_SECONDS:  # NaN too
        return _index(MIN_SECONDS, schema)
    if seconds > MAX_SECONDS:
        return _index(MAX_SECONDS, schema)
    return _index(seconds, schema)


def upper_bound(i: int, schema: int = SCHEMA) -> float:
    """The largest time bucket `i` holds, g**i seconds (exact at powers of two)."""
    bounds = _BOUNDS[schema]
    whole, part = divmod(i, len(bounds))
    return math.ldexp(bounds[part] * 2, whole)
