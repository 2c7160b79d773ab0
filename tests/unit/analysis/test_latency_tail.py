"""The p99 judge's relative limits: a two-sample tail test (`analysis.latency`), block by
block. Lognormal latencies (median 5 ms, sigma 0.5, the verdict benchmark's world) in
the template's schema-5 buckets."""

from __future__ import annotations

import math

import numpy as np
from pitstop.analysis import latency
from pitstop.api.spec import MetricSpec
from pitstop.api.status import MetricEvidence

SCHEMA = 5


def answers(rng: np.random.Generator, n: int, slow: float = 1.0) -> dict[float, float]:
    times = rng.lognormal(math.log(0.005 * slow), 0.5, size=n)
    index = np.ceil(np.log2(times) * 2**SCHEMA).astype(int)
    values, counts = np.unique(index, return_counts=True)
    return {2 ** (int(i) / 2**SCHEMA): float(c) for i, c in zip(values, counts, strict=True)}


LOOK = 5  # seconds between looks (a judge call costs a few ms: the tests stay short)


def judged(limit: dict[str, float], slow: float, seconds: int, seed: int,
           rps: tuple[float, float] = (4.0, 16.0), alpha: float = 0.05) -> str:  # fmt: skip
    """The verdict once one is reached within `seconds`, looking every LOOK seconds;
    `rps`: the candidate's and the stable's requests per second."""
    rng = np.random.default_rng(seed)
    metric = MetricSpec.model_validate({"name": "p99", "builtin": "latencyP99", **limit})
    evidence: MetricEvidence | None = None
    for _ in range(seconds // LOOK):
        block = latency.Block(answers(rng, int(rng.poisson(rps[0] * LOOK)), slow),
                              answers(rng, int(rng.poisson(rps[1] * LOOK))))  # fmt: skip
        result, _ = latency.judge(metric, evidence, block, alpha, min_requests=20)
        if result.verdict != "Inconclusive":
            return result.verdict
        evidence = result.evidence
    return "Inconclusive"


def test_identical_candidates_on_the_null_boundary_fail_at_most_alpha_of_the_time() -> None:
    """At `maxRatioToStable: 1` an identical candidate sits exactly on the null: the
    hardest case for false rollbacks. 60 rollouts of 300 s at alpha 0.1."""
    verdicts = [judged({"maxRatioToStable": 1.0}, 1.0, 300, seed, alpha=0.1)
                for seed in range(60)]  # fmt: skip
    assert verdicts.count("Fail") <= 12  # P(Binomial(60, 0.1) > 12) < 1 %


def test_a_candidate_1_5x_slower_is_caught_at_20_requests_a_second() -> None:
    """4 of 20 requests/s on the candidate. Bounding both p99s (the judge before the
    tail test) caught this in about 4 % of rollouts within 300 s."""
    verdicts = [judged({"maxRatioToStable": 1.2}, 1.5, 300, seed) for seed in range(20)]
    assert verdicts.count("Fail") >= 16, verdicts


def test_an_identical_candidate_passes_a_1_2x_limit_within_4_minutes_at_50_requests() -> None:
    """A quarter of 50 requests/s on the candidate: it passes in about 2 minutes (bounding
    both p99s took a median of 5.6)."""
    verdicts = [judged({"maxRatioToStable": 1.2}, 1.0, 240, seed, rps=(12.5, 37.5))
                for seed in range(10)]  # fmt: skip
    assert verdicts.count("Pass") >= 9, verdicts
    assert "Fail" not in verdicts


def test_a_difference_limit_is_judged_the_same_way() -> None:
    slower = [judged({"maxAboveStable": 0.005}, 2.0, 300, seed) for seed in range(5)]
    same = [judged({"maxAboveStable": 0.005}, 1.0, 300, seed, rps=(50.0, 150.0))
            for seed in range(5)]  # fmt: skip
    assert slower == ["Fail"] * 5
    assert same == ["Pass"] * 5


def test_tail_evidence_kept_for_another_limit_starts_again() -> None:
    rng = np.random.default_rng(0)
    one = MetricSpec.model_validate({"name": "p99", "builtin": "latencyP99",
                                     "maxRatioToStable": 1.2})  # fmt: skip
    other = one.model_copy(update={"max_ratio_to_stable": 2.0})
    evidence: MetricEvidence | None = None
    for _ in range(30):
        block = latency.Block(answers(rng, 10, 3.0), answers(rng, 10))
        result, _ = latency.judge(one, evidence, block, 0.05, 20)
        evidence = result.evidence
    assert evidence is not None
    assert evidence.test == "tail ratio 1.2 bets 4"
    assert max(evidence.above) > 0
    block = latency.Block(answers(rng, 10), answers(rng, 10))
    result, _ = latency.judge(other, evidence, block, 0.05, 20)
    assert result.evidence is not None
    assert result.evidence.test == "tail ratio 2 bets 4"
    assert max(result.evidence.above) == 0  # one block: no bet before the second
