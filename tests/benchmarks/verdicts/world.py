"""Simulated traffic for one rollout: what each revision serves, second by second.

Requests arrive as a Poisson process; each goes to the candidate with the probability
the current canary weight gives (an exact-weight provider such as gateway-api). Errors
are independent coin flips at each revision's rate; latencies are lognormal (median
5 ms, sigma 0.5: p99 about 16 ms) times the revision's slowness; each request has
`FEATURES` independent standard normal inputs, binned in the training profile's
deciles, and a drifting candidate sees feature 0 shifted. The classic buckets are the
serving template's Prometheus histogram (what today's judge reads); the fine ones are
/evidence's schema-5 buckets (what the sequential judge reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pitstop.analysis import samples
from pitstop.analysis.window import Window
from pitstop.packaging import latency
from scipy.stats import norm

FEATURES = 4
DECILES = norm.ppf(np.linspace(0.1, 0.9, 9))
EXPECTED = (0.1,) * 10
MEDIAN_SECONDS = 0.005
SIGMA = 0.5
CLASSIC = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Revision:
    error: float
    slow: float = 1.0
    shift: float = 0.0


@dataclass(frozen=True)
class Served:
    """One revision's second (or look) in both judges' formats."""

    fine: Window
    classic_buckets: dict[float, float]
    rows: np.ndarray  # bin counts per feature (FEATURES x 10)


def psi_of_shift(shift: float) -> float:
    """The true PSI of a standard normal shifted by `shift` over decile bins."""
    edges = np.concatenate([[-np.inf], DECILES, [np.inf]])
    shares = np.diff(norm.cdf(edges - shift))
    return float(np.sum((shares - 0.1) * np.log(shares / 0.1)))


def serve(rng: np.random.Generator, n: int, revision: Revision) -> Served:
    errors = float(rng.binomial(n, revision.error)) if n else 0.0
    times = rng.lognormal(math.log(MEDIAN_SECONDS * revision.slow), SIGMA, size=n)
    fine: dict[float, float] = {}
    if n:
        # latency.index, vectorised (the exact handling of bucket edges does not matter
        # for continuous draws)
        indices = np.ceil(np.log2(times) * 2**latency.SCHEMA).astype(int)
        values, counts = np.unique(indices, return_counts=True)
        fine = {samples.bucket_bound(int(i)): float(c) for i, c in zip(values, counts, strict=True)}
    classic_index = np.searchsorted(CLASSIC, times, side="left")
    classic_counts = np.bincount(classic_index, minlength=len(CLASSIC) + 1)
    classic = dict(zip((*CLASSIC, math.inf), classic_counts.astype(float), strict=True))
    inputs = rng.standard_normal((FEATURES, n))
    inputs[0] += revision.shift
    rows = np.stack([np.bincount(np.searchsorted(DECILES, x), minlength=10) for x in inputs])
    window = Window(
        requests=float(n), errors=errors, latency=fine,
        bins={f"f{i}": tuple(float(c) for c in rows[i]) for i in range(FEATURES)},
        expected={f"f{i}": EXPECTED for i in range(FEATURES)}, pods=1,
    )  # fmt: skip
    return Served(window, classic, rows)


def add(a: Window, b: Window) -> Window:
    latency = dict(a.latency)
    for bound, count in b.latency.items():
        latency[bound] = latency.get(bound, 0.0) + count
    bins = {
        name: tuple(x + y for x, y in zip(a.bins.get(name, (0.0,) * 10), counts, strict=True))
        for name, counts in b.bins.items()
    }
    return Window(
        requests=a.requests + b.requests, errors=a.errors + b.errors, latency=latency,
        bins=bins, expected=b.expected or a.expected, pods=1,
    )  # fmt: skip
