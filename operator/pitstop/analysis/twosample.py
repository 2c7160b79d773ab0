"""Anytime-valid evidence that the candidate's proportion (say, of errors) exceeds the
stable's by more than a limit, or stays below it: `p_c - p_s` against a difference,
or `p_c / p_s` against a ratio.

The stable's own rate is unknown and changes over time (load, upstreams), so the test
compares the two revisions block by block — a block is what both served between two
looks — and never needs that rate. Each block contributes an e-value

    e = L_alt(block) / L_null(block),

where the alternative (theta_c, theta_s) is a predictable estimate from earlier blocks
and the null point is its *reverse information projection* onto the boundary line of
the null (p_c = p_s + g, or p_c = g p_s): the point of the line that minimises
n_c KL(theta_c || q_c) + n_s KL(theta_s || q_s) for the block's own sizes. For that
point E_null[e] <= 1 holds for every null (p_c, p_s), not only one: along the line,
E[e] = g_c(p)^n_c g_s(p)^n_s with g_c, g_s linear in p, so log E[e] is concave with
its maximum 0 at the projection (the projection's defining equation is exactly
d/dp log E[e] = 0 there); off the line, E[e] only falls as p_c moves into the null,
because the projection puts theta_c on the alternative's side of q_c. Products of such
e-values over blocks are test supermartingales, so by Ville's inequality
P(ever >= 1/alpha | null) <= alpha, under any stopping rule and whatever the stable's
rate does from block to block. This is the RIPr construction of Grunwald, de Heide &
Koolen ("Safe testing", JRSS B 2024) and, for 2x2 tables, Turner, Ly & Grunwald
("Generic e-variables for exact sequential k-sample tests that allow for optional
stopping", 2024); the projection onto a shifted line is the restricted maximum
likelihood of Farrington & Manning (difference, 1990) and Miettinen & Nurminen
(ratio, 1985), applied to the alternative's expected counts.

What each block bets on decides how fast the evidence grows, never its validity. The
plug-in estimate learns the true rates but only slowly, and every block it bets on a
guess still near "no difference" is evidence thrown away: at 1 candidate request a
second, a candidate failing 20 points more than the stable took about 40 answers to
roll back where a test that knew the rates needed 15. So each threshold and side runs
`BETS` e-processes side by side — the plug-in, and fixed bets that the
parameter lies a set distance beyond the threshold (the stable's rate still the
plug-in's) — and the evidence is their average (an average of test supermartingales
is one: Ville holds for it as for each). The best bet's evidence, less log 4 once, and
not a wrong guess per block.

Per threshold of a fixed grid (the spec's limit among them) and per side: `above`
holds the evidence that the parameter exceeds each threshold, `below` that it is
under it, each bet's log e-value flattened bet by bet (`mixed` averages them). The
verdict reads the limit's pair; the interval shown to people is the range of grid
thresholds the evidence has not yet excluded.

Pure: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pitstop.analysis.outcome import Verdict, more_requests

Kind = Literal["difference", "ratio"]

_EPS = 1e-9
# Pseudo-requests by which the plug-in estimates lean towards the pooled rate: early
# bets then stay near "no difference" instead of betting on wild rates.
_SHRINK = 2.0

# The fixed bets, beyond the threshold on each side: for differences in multiples of
# the limit's size (a limit of 0.005 bets on differences 0.01, 0.04 and 0.2 above it,
# and below it on 0 — an identical candidate — then -0.01 and -0.045), for ratios as
# factors.
_DIFFERENCE_BETS = {"above": (2.0, 8.0, 40.0), "below": (1.0, 3.0, 10.0)}
_RATIO_BETS = {"above": (1.5, 3.0, 10.0), "below": (1.2, 2.0, 5.0)}
BETS = 4  # the plug-in and three fixed ones

_DIFFERENCES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
_RATIOS = (0.1, 0.2, 1 / 3, 0.5, 2 / 3, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


def grid(kind: Kind, limit: float) -> tuple[float, ...]:
    """The thresholds evidence is kept for: a fixed grid plus the spec's limit."""
    base = (
        {0.0, *_DIFFERENCES, *(-d for d in _DIFFERENCES)} if kind == "difference" else set(_RATIOS)
    )
    return tuple(sorted(base | {float(limit)}))


@dataclass(frozen=True)
class Evidence:
    """Cumulative counts of both revisions and the log e-value of each test."""

    candidate_requests: float = 0.0
    candidate_bad: float = 0.0
    stable_requests: float = 0.0
    stable_bad: float = 0.0
    above: tuple[float, ...] = field(default_factory=tuple)
    below: tuple[float, ...] = field(default_factory=tuple)


def update(
    evidence: Evidence,
    kind: Kind,
    thresholds: Sequence[float],
    block: tuple[float, float, float, float],
    limit: float | None = None,
) -> Evidence:
    """Add one block: (candidate requests, candidate bad, stable requests, stable bad).
    `limit` sizes the fixed bets (default: the largest threshold's size)."""
    n_c, k_c, n_s, k_s = (max(0.0, float(x)) for x in block)
    k_c, k_s = min(k_c, n_c), min(k_s, n_s)
    size = BETS * len(thresholds)
    above = np.array(evidence.above if len(evidence.above) == size else [0.0] * size)
    below = np.array(evidence.below if len(evidence.below) == size else [0.0] * size)
    if n_c > 0 and n_s > 0 and evidence.candidate_requests > 0 and evidence.stable_requests > 0:
        g = np.asarray(thresholds, dtype=np.float64)
        scale = limit if limit is not None else float(np.max(np.abs(g)))
        theta_c, theta_s = _plug_in(evidence)
        for side, logs in (("above", above), ("below", below)):
            bets = _bets(kind, side, g, theta_c, theta_s, scale)
            on_side = _beyond(kind, side, bets, theta_s, g)
            gain = log_e(kind, g, bets, theta_s, n_c, k_c, n_s, k_s)
            logs += np.where(on_side, gain, 0.0).ravel()
    return Evidence(
        candidate_requests=evidence.candidate_requests + n_c,
        candidate_bad=evidence.candidate_bad + k_c,
        stable_requests=evidence.stable_requests + n_s,
        stable_bad=evidence.stable_bad + k_s,
        above=tuple(float(x) for x in above),
        below=tuple(float(x) for x in below),
    )


def _bets(
    kind: Kind, side: str, g: np.ndarray, theta_c: float, theta_s: float, scale: float
) -> np.ndarray:
    """The candidate's rate each bet assumes, (BETS, thresholds): the plug-in's first."""
    rows = [np.full(g.shape, theta_c)]
    if kind == "difference":
        size = max(abs(scale), 0.001)
        sign = 1.0 if side == "above" else -1.0
        rows += [theta_s + g + sign * m * size for m in _DIFFERENCE_BETS[side]]
    else:
        rows += [theta_s * g * (f if side == "above" else 1.0 / f) for f in _RATIO_BETS[side]]
    return np.asarray(np.clip(np.stack(rows), _EPS, 1.0 - _EPS))


def _beyond(
    kind: Kind, side: str, theta_c: np.ndarray, theta_s: float, g: np.ndarray
) -> np.ndarray:
    """Whether each bet lies strictly on its side of the threshold. A bet on the null's
    side has no e-value against it (its projection is itself), so it sits the block out
    (e = 1)."""
    if kind == "difference":
        gap = theta_c - theta_s
        return np.asarray(gap > g if side == "above" else gap < g)
    return np.asarray(theta_c > g * theta_s if side == "above" else theta_c < g * theta_s)


def mixed(logs: Sequence[float], thresholds: int) -> np.ndarray:
    """Each threshold's evidence: the average of its bets' e-values, in logs (zeros
    before any, or for evidence kept in another shape)."""
    if len(logs) != BETS * thresholds:
        return np.zeros(thresholds)
    bets = np.asarray(logs, dtype=float).reshape(BETS, thresholds)
    return np.asarray(np.logaddexp.reduce(bets, axis=0) - math.log(BETS))


def _plug_in(evidence: Evidence) -> tuple[float, float]:
    """The alternative to bet on: each revision's rate so far, shrunk to the pooled one."""
    pooled = (evidence.candidate_bad + evidence.stable_bad + 0.5) / (
        evidence.candidate_requests + evidence.stable_requests + 1.0
    )
    theta_c = (evidence.candidate_bad + _SHRINK * pooled) / (evidence.candidate_requests + _SHRINK)
    theta_s = (evidence.stable_bad + _SHRINK * pooled) / (evidence.stable_requests + _SHRINK)
    return _clip(theta_c), _clip(theta_s)


def _clip(p: float) -> float:
    return min(max(p, _EPS), 1.0 - _EPS)


def log_e(
    kind: Kind,
    g: np.ndarray,
    theta_c: float | np.ndarray,
    theta_s: float,
    n_c: float,
    k_c: float,
    n_s: float,
    k_s: float,
) -> np.ndarray:
    """log e of one block for each threshold, against the projected null point."""
    q_c, q_s = project(kind, g, theta_c, theta_s, n_c, n_s)
    return (
        k_c * np.log(theta_c / q_c)
        + (n_c - k_c) * np.log((1.0 - theta_c) / (1.0 - q_c))
        + k_s * np.log(theta_s / q_s)
        + (n_s - k_s) * np.log((1.0 - theta_s) / (1.0 - q_s))
    )


def project(
    kind: Kind, g: np.ndarray, theta_c: float | np.ndarray, theta_s: float, n_c: float, n_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """The point (q_c, q_s) of the line p_c = p_s + g (or g p_s) closest in weighted KL
    to (theta_c, theta_s): the restricted maximum likelihood of the expected counts."""
    x_c, x_s = n_c * theta_c, n_s * theta_s
    if kind == "ratio":
        # Miettinen & Nurminen: A q^2 + B q + C = 0 for q = q_s, q_c = g q_s.
        a = g * (n_c + n_s)
        b = -(g * n_c + x_c + n_s + g * x_s)
        c = x_c + x_s
        q_s = (-b - np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)
        q_c = g * q_s
    else:
        q_c = _farrington_manning(g, x_c / n_c, x_s / n_s, n_s / n_c)
        q_s = q_c - g
    q_c = np.clip(q_c, _EPS, 1.0 - _EPS)
    q_s = np.clip(q_s, _EPS, 1.0 - _EPS)
    return q_c, q_s


def _farrington_manning(
    d: np.ndarray, p1: float | np.ndarray, p2: float, theta: float
) -> np.ndarray:
    """Restricted MLE of p1 under p1 - p2 = d (closed-form root of the score's cubic)."""
    a = 1.0 + theta
    b = -(1.0 + theta + p1 + theta * p2 + d * (theta + 2.0))
    c = d * d + d * (2.0 * p1 + theta + 1.0) + p1 + theta * p2
    e = -p1 * d * (1.0 + d)
    v = b**3 / (3.0 * a) ** 3 - b * c / (6.0 * a * a) + e / (2.0 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b * b / (3.0 * a) ** 2 - c / (3.0 * a), 0.0))
    u = np.where(u == 0.0, _EPS, u)
    w = (math.pi + np.arccos(np.clip(v / u**3, -1.0, 1.0))) / 3.0
    return np.asarray(2.0 * u * np.cos(w) - b / (3.0 * a))


def estimate(kind: Kind, evidence: Evidence) -> tuple[float | None, float | None]:
    """(candidate's rate, stable's rate) so far, None without requests."""
    c = (
        evidence.candidate_bad / evidence.candidate_requests
        if evidence.candidate_requests
        else None
    )
    s = evidence.stable_bad / evidence.stable_requests if evidence.stable_requests else None
    return c, s


def bounds(
    evidence: Evidence, thresholds: Sequence[float], alpha: float
) -> tuple[float | None, float | None]:
    """(lower, upper) of the parameter, None where no grid threshold is excluded."""
    needed = math.log(1.0 / alpha)
    lower = upper = None
    above = mixed(evidence.above, len(thresholds))
    below = mixed(evidence.below, len(thresholds))
    for g, up, down in zip(thresholds, above, below, strict=True):
        if up >= needed:
            lower = g  # confident the parameter exceeds g
        if down >= needed and upper is None:
            upper = g
    return lower, upper


def verdict(
    kind: Kind, limit: float, thresholds: Sequence[float], evidence: Evidence, alpha: float,
    n_c: float, n_s: float,
) -> tuple[Verdict, int | None]:  # fmt: skip
    """The limit's verdict from its pair of e-processes at `alpha`, and while it is
    inconclusive about how many more candidate requests would settle it (blocks split
    n_c : n_s, at the side the estimates lean to)."""
    needed = math.log(1.0 / alpha)
    index = list(thresholds).index(limit)
    above = float(mixed(evidence.above, len(thresholds))[index])
    below = float(mixed(evidence.below, len(thresholds))[index])
    if above >= needed:
        return "Fail", None
    if below >= needed:
        return "Pass", None
    c, s = estimate(kind, evidence)
    worse = c is not None and s is not None and (c - s > limit if kind == "difference"
                                                   else c > limit * s)  # fmt: skip
    speed = rate(kind, limit, evidence, n_c, n_s)
    return "Inconclusive", more_requests(needed - (above if worse else below), speed)


def rate(kind: Kind, limit: float, evidence: Evidence, n_c: float, n_s: float) -> float | None:
    """Expected gain in log evidence per candidate request at the limit, were the
    current estimates true and blocks split n_c : n_s (None: no direction yet)."""
    if evidence.candidate_requests <= 0 or evidence.stable_requests <= 0 or n_c <= 0:
        return None
    theta_c, theta_s = _plug_in(evidence)
    g = np.asarray([limit], dtype=np.float64)
    q_c, q_s = project(kind, g, theta_c, theta_s, n_c, n_s)
    gain = n_c * _kl(theta_c, float(q_c[0])) + n_s * _kl(theta_s, float(q_s[0]))
    return gain / n_c if gain > 0 else None


def _kl(p: float, q: float) -> float:
    p, q = _clip(p), _clip(q)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
