"""What no judge can beat: fixed-sample tests that know the stable's true behaviour.

They are not anytime-valid (they look once, at a time chosen in advance) and they know
what a real judge must estimate, so they bound from above what any judge can do with
the same traffic. Where a target asks for more, it is out of reach, not mistuned.

`sequential_detection` is the bound for the judge the issue asks for: the e-process
that knows both revisions' rates exactly (it bets on the truth, the best any bet can
do) and, like the judge, stays valid whatever the stable's rate does from one look to
the next. A judge that must learn the rates is slower still.
"""

from __future__ import annotations

import math

import numpy as np
from pitstop.analysis import twosample
from scipy.stats import binom, norm, poisson

from tests.benchmarks.verdicts import world

STEPS = ((20, 30), (50, 30))  # the default canary: (weight %, pause s)


def candidate_requests(rps: float, seconds: float) -> tuple[float, float]:
    """Expected (candidate, stable) requests after `seconds` of the default canary."""
    c = s = 0.0
    left = seconds
    for weight, pause in STEPS:
        spent = min(left, pause) if (weight, pause) != STEPS[-1] else left
        c += rps * spent * weight / 100
        s += rps * spent * (100 - weight) / 100
        left -= spent
        if left <= 0:
            break
    return c, s


def detection_power(rps: float, seconds: float, p: float, jump: float, limit: float,
                    alpha: float) -> float:  # fmt: skip
    """Chance that an exact one-sided binomial test, knowing the stable's rate p, finds a
    candidate failing p + jump above p + limit from its first `seconds` of requests."""
    mean, _ = candidate_requests(rps, seconds)
    total = 0.0
    for n in range(int(poisson.ppf(1e-6, mean)), int(poisson.ppf(1 - 1e-6, mean)) + 1):
        critical = binom.isf(alpha, n, p + limit) + 1  # smallest count with tail <= alpha
        total += poisson.pmf(n, mean) * binom.sf(critical - 1, n, min(1.0, p + jump))
    return total


def seconds_to_pass_errors(rps: float, p: float, limit: float, alpha: float) -> float:
    """When a z-test, knowing both revisions' rate is p, first shows the difference below
    `limit` in half of identical rollouts (its estimate sits at 0: half land below)."""
    z = norm.isf(alpha)
    for seconds in range(5, 36_000, 5):
        c, s = candidate_requests(rps, seconds)
        if c > 0 and s > 0 and z * math.sqrt(p * (1 - p) * (1 / c + 1 / s)) <= limit:
            return seconds
    return math.inf


def seconds_to_pass_p99(rps: float, ratio: float, alpha: float) -> float:
    """When an exact binomial test, knowing the stable's p99 exactly, first shows in half
    of identical rollouts that at most 1% of the candidate's answers are slower than
    `ratio` x that p99."""
    tail = p99_tail(1.0, ratio)
    for seconds in range(5, 36_000, 5):
        n, _ = candidate_requests(rps, seconds)
        n = int(n)
        typical = binom.median(n, tail)
        if n > 0 and binom.cdf(typical, n, 0.01) <= alpha:
            return seconds
    return math.inf


def p99_detection_power(rps: float, seconds: float, slow: float, ratio: float,
                        alpha: float) -> float:  # fmt: skip
    """Chance that an exact one-sided binomial test, knowing the stable's p99 exactly,
    finds from the candidate's first `seconds` of requests that more than 1% of its
    answers are slower than `ratio` x that p99, when its latencies are `slow` x the
    stable's."""
    mean, _ = candidate_requests(rps, seconds)
    tail = p99_tail(slow, ratio)
    total = 0.0
    for n in range(int(poisson.ppf(1e-6, mean)), int(poisson.ppf(1 - 1e-6, mean)) + 1):
        critical = binom.isf(alpha, n, 0.01) + 1
        total += poisson.pmf(n, mean) * binom.sf(critical - 1, n, tail)
    return total


def sequential_detection(rps: float, seconds: int, p: float, jump: float, limit: float,
                         alpha: float, runs: int = 2000, seed: int = 1) -> float:  # fmt: skip
    """Share of rollouts in which the two-sample e-process betting on the true rates
    (p + jump against p), looking every second, shows the difference above `limit`
    within `seconds` of the default canary."""
    rng = np.random.default_rng(seed)
    g = np.array([limit])
    need = math.log(1.0 / alpha)
    worse = min(1.0, p + jump)
    found = 0
    for _ in range(runs):
        evidence, left = 0.0, seconds
        for weight, pause in STEPS:
            for _ in range(min(left, pause) if (weight, pause) != STEPS[-1] else left):
                n_c = rng.poisson(rps * weight / 100)
                n_s = rng.poisson(rps * (100 - weight) / 100)
                if n_c and n_s:
                    block = (n_c, rng.binomial(n_c, worse), n_s, rng.binomial(n_s, p))
                    evidence += float(twosample.log_e("difference", g, worse, p, *block)[0])
                if evidence >= need:
                    break
            left -= pause
            if evidence >= need or left <= 0:
                break
        found += evidence >= need
    return found / runs


def first_evidence(kind: twosample.Kind, g: float, theta_c: float, theta_s: float, rps: float,
                   seconds: int, alpha: float, runs: int = 2000, seed: int = 1) -> np.ndarray:  # fmt: skip
    """Per rollout, the second at which the two-sample e-process betting on the true
    rates (`theta_c` against `theta_s`), looking every second, first shows that side of
    the threshold `g` (inf: not within `seconds`), with the canary held at its first
    step: a step advances only on Pass, so neither a detection nor the first step's Pass
    ever sees more of the candidate than that. By Wald's bound no sequential test at
    the same level needs fewer requests on average: it is the bound for any judge that
    stays valid however often it looks."""
    rng = np.random.default_rng(seed)
    share = STEPS[0][0] / 100
    need = math.log(1.0 / alpha)
    thresholds = np.array([g])
    evidence = np.zeros(runs)
    first = np.full(runs, math.inf)
    for t in range(1, seconds + 1):
        n_c = rng.poisson(rps * share, runs).astype(float)
        n_s = rng.poisson(rps * (1 - share), runs).astype(float)
        k_c = rng.binomial(n_c.astype(int), theta_c).astype(float)
        k_s = rng.binomial(n_s.astype(int), theta_s).astype(float)
        both = (n_c > 0) & (n_s > 0)
        gain = twosample.log_e(kind, thresholds, theta_c, theta_s, np.maximum(n_c, 1.0), k_c,
                               np.maximum(n_s, 1.0), k_s)  # fmt: skip
        evidence += np.where(both, gain, 0.0)
        first = np.where((evidence >= need) & np.isinf(first), t, first)
    return first


def p99_tail(slow: float, ratio: float) -> float:
    """The candidate's share of answers slower than `ratio` x the stable's p99 when its
    latencies are `slow` x the stable's (the stable's own share: 1 %)."""
    return float(1 - norm.cdf(norm.ppf(0.99) + math.log(ratio / slow) / world.SIGMA))


def p99_sequential_detection(rps: float, seconds: int, slow: float, ratio: float,
                             alpha: float) -> float:  # fmt: skip
    """Share of rollouts in which the tail e-process betting on the true shares catches a
    candidate `slow` x the stable within `seconds`, canary held at its first step."""
    first = first_evidence("ratio", 1.0, p99_tail(slow, ratio), 0.01, rps, seconds, alpha)
    return float(np.mean(np.isfinite(first)))


def sequential_seconds_to_promote(rps: float, p: float, limit: float, ratio: float,
                                  alpha: float, seconds: int = 1200) -> float:  # fmt: skip
    """Median duration of an identical candidate's rollout if errors and p99 passed as
    soon as the e-processes betting on the truth allow (drift left out, so the true
    bound is higher): the first step ends at its pause or at both Passes, whichever is
    later, and each later step takes its pause."""
    errors = first_evidence("difference", limit, p, p, rps, seconds, alpha, seed=2)
    p99 = first_evidence("ratio", 1.0, p99_tail(1.0, ratio), 0.01, rps, seconds, alpha, seed=3)
    first_step = np.maximum(np.maximum(errors, p99), STEPS[0][1])
    return float(np.median(first_step + sum(pause for _, pause in STEPS[1:])))
