"""The builtin quality metric: the model's error on predictions whose outcome came back.

Looks carry labelled predictions as the template counts them (`/evidence`, "quality"):
rows and correct ones for a classifier, sums of absolute and squared errors for a
regressor. Random feedback is seeded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from pitstop.analysis import judge, quality
from pitstop.analysis.judge import Look
from pitstop.analysis.samples import Labelled
from pitstop.analysis.window import Window
from pitstop.api.spec import AnalysisSpec
from pitstop.api.status import AnalysisStatus

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def spec(confidence: float = 0.99, **limits: Any) -> AnalysisSpec:
    metric = {"name": "quality", "builtin": "quality", **limits}
    return AnalysisSpec.model_validate(
        {"metrics": [metric], "minRequests": 50, "confidence": confidence}
    )


def classified(rng: np.random.Generator, n: int, accuracy: float) -> Labelled:
    return Labelled(rows=n, correct=float(rng.binomial(n, accuracy)))


def regressed(rng: np.random.Generator, n: int, scale: float) -> Labelled:
    errors = rng.normal(0.0, scale, size=n)
    return Labelled(rows=n, absolute=float(np.abs(errors).sum()),
                    squared=float((errors**2).sum()))  # fmt: skip


def run(analysis: AnalysisSpec, looks: list[Look]) -> AnalysisStatus:
    status = None
    for look in looks:
        status = judge.evaluate(analysis, status, "cand", NOW, look=look)
        if status.verdict == "Fail":
            break
    assert status is not None
    return status


def test_a_classifier_that_is_wrong_more_often_than_the_stable_fails() -> None:
    rng = np.random.default_rng(1)
    looks = [Look(Window(quality=classified(rng, 20, 0.75)), Window(quality=classified(rng, 20, 0.92)))
             for _ in range(60)]  # fmt: skip
    result = run(spec(maxAboveStable=0.05), looks)
    assert result.verdict == "Fail"
    metric = result.metrics[0]
    assert metric.value is not None
    assert 0.15 < metric.value < 0.35  # 1 - accuracy
    assert metric.requests is not None
    assert metric.requests < 60 * 20  # decided before the feedback ran out


def test_an_equally_accurate_classifier_is_never_rolled_back_and_passes() -> None:
    fails = passes = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        looks = [Look(Window(quality=classified(rng, 20, 0.9)),
                      Window(quality=classified(rng, 20, 0.9))) for _ in range(100)]  # fmt: skip
        verdict = run(spec(maxAboveStable=0.05, confidence=0.95), looks).verdict
        fails += verdict == "Fail"
        passes += verdict == "Pass"
    assert fails <= 5  # at most 1 - confidence of rollouts, here 0 or a few
    assert passes >= 90


def test_a_shadow_is_judged_on_the_answers_the_stable_mirrored() -> None:
    rng = np.random.default_rng(2)
    # The shadow's own pods count nothing (they answer copies); the stable's pods match
    # the shadow's answers to the outcomes.
    looks = [Look(Window(), Window(quality=classified(rng, 20, 0.95),
                                   shadow_quality=classified(rng, 20, 0.6)))
             for _ in range(40)]  # fmt: skip
    result = run(spec(maxAboveStable=0.05), looks)
    assert result.verdict == "Fail"


def test_no_feedback_leaves_quality_inconclusive_and_says_why() -> None:
    result = judge.evaluate(spec(max=0.1), None, "cand", NOW,
                            look=Look(Window(requests=100), Window(requests=100)))  # fmt: skip
    assert result.verdict == "Inconclusive"
    assert "no feedback" in result.message


def test_a_regressor_with_twice_the_error_fails_and_an_equal_one_passes() -> None:
    rng = np.random.default_rng(3)
    worse = [Look(Window(quality=regressed(rng, 20, 2.0)), Window(quality=regressed(rng, 20, 1.0)))
             for _ in range(50)]  # fmt: skip
    failed = run(spec(maxRatioToStable=1.3), worse)
    assert failed.verdict == "Fail"
    assert failed.metrics[0].value is not None
    assert 1.3 < failed.metrics[0].value < 1.9  # MAE of N(0, 2): 2 * sqrt(2 / pi) = 1.6

    fails = passes = 0
    for seed in range(100):
        rng = np.random.default_rng(100 + seed)
        same = [Look(Window(quality=regressed(rng, 20, 1.0)),
                     Window(quality=regressed(rng, 20, 1.0))) for _ in range(150)]  # fmt: skip
        verdict = run(spec(maxRatioToStable=1.3, confidence=0.95), same).verdict
        fails += verdict == "Fail"
        passes += verdict == "Pass"
    assert fails <= 5
    assert passes >= 90


def test_an_absolute_mae_limit() -> None:
    rng = np.random.default_rng(4)
    looks = [Look(Window(quality=regressed(rng, 20, 1.0))) for _ in range(40)]
    assert run(spec(max=0.5), looks).verdict == "Fail"  # MAE 0.8
    looks = [Look(Window(quality=regressed(rng, 20, 1.0))) for _ in range(40)]
    assert run(spec(max=1.2), looks).verdict == "Pass"


def test_the_confidence_sequence_covers_the_mean_at_every_look() -> None:
    """Anytime validity, checked: over many runs, the interval misses the true MAE at
    *any* of 200 looks in at most about alpha of them."""
    missed = 0
    truth = np.sqrt(2 / np.pi)
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        n = total = squares = 0.0
        for _ in range(200):
            e = np.abs(rng.normal(0.0, 1.0, size=10))
            n, total, squares = n + 10, total + e.sum(), squares + (e**2).sum()
            mean = total / n
            r = quality.radius(n, squares / n - mean * mean, 0.1)
            if abs(mean - truth) > r:
                missed += 1
                break
    assert missed <= 0.1 * 200
