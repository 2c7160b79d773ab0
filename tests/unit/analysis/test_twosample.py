"""The two-sample e-process: its null point is the right one, and it is valid.

Validity is checked exactly, not by simulation: for small blocks the expectation of a
block's e-value under a null (p_c, p_s) is a finite sum over binomial outcomes, and it
must not exceed 1 — on the null's boundary line and inside the null region.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from pitstop.analysis import twosample
from pitstop.analysis.twosample import Evidence
from scipy.optimize import minimize_scalar
from scipy.stats import binom


def brute_projection(kind: str, g: float, tc: float, ts: float, nc: float, ns: float) -> float:
    """q_s maximising the expected log-likelihood of (tc, ts) on the null line."""

    def loss(q: float) -> float:
        qc = q + g if kind == "difference" else g * q
        total = 0.0
        for n, t, p in ((nc, tc, qc), (ns, ts, q)):
            total += n * (t * math.log(p) + (1 - t) * math.log(1 - p))
        return -total

    lo = max(1e-9, -g + 1e-9) if kind == "difference" else 1e-9
    hi = min(1 - 1e-9, 1 - g - 1e-9) if kind == "difference" else min(1 - 1e-9, 1 / g - 1e-9)
    return float(minimize_scalar(loss, bounds=(lo, hi), method="bounded",
                                 options={"xatol": 1e-12}).x)  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "g", "tc", "ts", "nc", "ns"),
    [
        ("difference", 0.005, 0.2, 0.01, 10, 40),
        ("difference", 0.005, 0.001, 0.03, 10, 10),
        ("difference", -0.02, 0.3, 0.5, 3, 100),
        ("difference", 0.2, 0.9, 0.1, 50, 5),
        ("ratio", 1.2, 0.05, 0.01, 10, 40),
        ("ratio", 0.5, 0.001, 0.2, 7, 3),
        ("ratio", 3.0, 0.2, 0.3, 20, 20),
    ],
)  # fmt: skip
def test_projection_is_the_restricted_maximum(
    kind: twosample.Kind, g: float, tc: float, ts: float, nc: float, ns: float
) -> None:
    q_c, q_s = twosample.project(kind, np.array([g]), tc, ts, nc, ns)
    assert float(q_s[0]) == pytest.approx(brute_projection(kind, g, tc, ts, nc, ns), abs=1e-6)
    on_line = q_s[0] + g if kind == "difference" else g * q_s[0]
    assert float(q_c[0]) == pytest.approx(float(on_line), abs=1e-9)


def expected_e(
    kind: twosample.Kind, g: float, alt: tuple[float, float], null: tuple[float, float],
    nc: int, ns: int,
) -> float:  # fmt: skip
    gains = {}
    for kc, ks in product(range(nc + 1), range(ns + 1)):
        gains[kc, ks] = float(twosample.log_e(kind, np.array([g]), *alt, nc, kc, ns, ks)[0])
    return sum(
        binom.pmf(kc, nc, null[0]) * binom.pmf(ks, ns, null[1]) * math.exp(gain)
        for (kc, ks), gain in gains.items()
    )


@pytest.mark.parametrize("kind", ["difference", "ratio"])
@pytest.mark.parametrize(("nc", "ns"), [(1, 1), (3, 5), (8, 2)])
def test_a_block_e_value_has_mean_at_most_one_under_every_null(
    kind: twosample.Kind, nc: int, ns: int
) -> None:
    rng = np.random.default_rng(nc * 10 + ns)
    for _ in range(10):
        g = float(rng.uniform(-0.2, 0.3)) if kind == "difference" else float(rng.uniform(0.5, 3))
        ts = float(rng.uniform(0.01, 0.6))
        # An alternative beyond the line (the side the "above" test bets on) ...
        tc = min(0.99, (ts + g if kind == "difference" else g * ts) + float(rng.uniform(0.01, 0.3)))
        if not 0 < tc < 1 or (tc - ts <= g if kind == "difference" else tc <= g * ts):
            continue
        # ... against null points on the line and inside the null region.
        for ps in np.linspace(0.0, 1.0, 11):
            boundary = ps + g if kind == "difference" else g * ps
            for pc in {min(max(boundary, 0.0), 1.0), min(max(boundary - 0.1, 0.0), 1.0)}:
                if pc - ps > g + 1e-12 if kind == "difference" else pc > g * ps + 1e-12:
                    continue
                assert expected_e(kind, g, (tc, ts), (pc, ps), nc, ns) <= 1 + 1e-9


def simulate(
    rng: np.random.Generator, pc: float, ps: float, rate_c: float, rate_s: float, looks: int,
    kind: twosample.Kind = "difference", limit: float = 0.005,
) -> Evidence:  # fmt: skip
    thresholds = twosample.grid(kind, limit)
    evidence = Evidence()
    for _ in range(looks):
        nc, ns = rng.poisson(rate_c), rng.poisson(rate_s)
        block = (nc, rng.binomial(nc, pc), ns, rng.binomial(ns, ps))
        evidence = twosample.update(evidence, kind, thresholds, block)
    return evidence


def test_a_candidate_far_above_the_limit_is_found_above_it() -> None:
    rng = np.random.default_rng(1)
    thresholds = twosample.grid("difference", 0.005)
    evidence = simulate(rng, 0.2, 0.01, 10, 10, looks=60)
    lower, upper = twosample.bounds(evidence, thresholds, 0.01)
    assert lower is not None
    assert lower >= 0.005
    assert upper is None or upper > 0.1


def test_an_identical_candidate_is_eventually_found_within_the_limit() -> None:
    rng = np.random.default_rng(2)
    thresholds = twosample.grid("difference", 0.02)
    evidence = simulate(rng, 0.01, 0.01, 50, 50, looks=200, limit=0.02)
    lower, upper = twosample.bounds(evidence, thresholds, 0.01)
    assert upper is not None
    assert upper <= 0.02
    assert lower is None or lower < 0


def test_identical_candidates_are_rarely_found_above_a_zero_limit() -> None:
    """Ville: with limit 0 (any difference), at most alpha of A/A runs ever cross — the
    average of the bets, which is what the verdict reads."""
    rng = np.random.default_rng(3)
    thresholds = twosample.grid("difference", 0.0)
    index = thresholds.index(0.0)
    crossed = 0
    for _ in range(200):
        evidence = Evidence()
        for _ in range(100):
            nc, ns = rng.poisson(5), rng.poisson(5)
            evidence = twosample.update(
                evidence, "difference", thresholds,
                (nc, rng.binomial(nc, 0.05), ns, rng.binomial(ns, 0.05)),
            )  # fmt: skip
            if twosample.mixed(evidence.above, len(thresholds))[index] >= math.log(1 / 0.05):
                crossed += 1
                break
    assert crossed <= 0.05 * 200 + 3


def test_ratio_evidence_sees_a_tripled_rate() -> None:
    rng = np.random.default_rng(4)
    thresholds = twosample.grid("ratio", 1.5)
    evidence = simulate(rng, 0.06, 0.02, 40, 40, looks=120, kind="ratio", limit=1.5)
    lower, _ = twosample.bounds(evidence, thresholds, 0.01)
    assert lower is not None
    assert lower >= 1.5


def _looks_to_cross(
    rng: np.random.Generator, pc: float, ps: float, side: str, per_look: float
) -> tuple[int, int]:
    """Looks until the average of the bets, and the plug-in bet alone, show the candidate
    (above|below) a 0.005 limit: `per_look` candidate requests a look, 4x as many stable."""
    thresholds = twosample.grid("difference", 0.005)
    index, size, need = thresholds.index(0.005), len(thresholds), math.log(1 / 0.01)
    evidence, mixed_at, plug_in_at = Evidence(), 0, 0
    for look in range(1, 2001):
        nc, ns = rng.poisson(per_look), rng.poisson(4 * per_look)
        block = (nc, rng.binomial(nc, pc), ns, rng.binomial(ns, ps))
        evidence = twosample.update(evidence, "difference", thresholds, block, 0.005)
        logs = evidence.above if side == "above" else evidence.below
        if not mixed_at and twosample.mixed(logs, size)[index] >= need:
            mixed_at = look
        if not plug_in_at and logs[index] >= need:  # the first bet is the plug-in
            plug_in_at = look
        if mixed_at and plug_in_at:
            break
    return mixed_at or 2001, plug_in_at or 2001


@pytest.mark.parametrize(
    ("pc", "ps", "side", "per_look", "gain"),
    [(0.21, 0.01, "above", 1, 0.9), (0.01, 0.01, "below", 40, 0.8)],
)
def test_fixed_bets_beside_the_plug_in_reach_a_verdict_sooner(
    pc: float, ps: float, side: str, per_look: float, gain: float
) -> None:
    """A candidate 20 points worse at one request a second, and one as good as its
    stable at 1 % errors and 40 a second: the bets on "far beyond the limit" and on "no
    difference" decide in fewer looks than the plug-in alone, whose noisy estimates
    cost evidence at every look."""
    rng = np.random.default_rng(5)
    runs = [_looks_to_cross(rng, pc, ps, side, per_look) for _ in range(40)]
    mixed, plug_in = (float(np.median([r[i] for r in runs])) for i in (0, 1))
    assert mixed <= gain * plug_in, (mixed, plug_in)
