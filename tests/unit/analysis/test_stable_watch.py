"""Watching the stable between rollouts: when retraining becomes advisable, once per
episode. Looks carry labelled predictions (quality) as the template counts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pitstop.analysis import monitoring
from pitstop.analysis.judge import Look
from pitstop.analysis.samples import Labelled
from pitstop.analysis.window import Window
from pitstop.api.spec import MonitoringSpec
from pitstop.api.status import MonitoringStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def spec(**changes: Any) -> MonitoringSpec:
    body = {"metrics": [{"name": "accuracy", "builtin": "quality", "max": 0.2}], "for": "10m",
            **changes}  # fmt: skip
    return MonitoringSpec.model_validate(body)


def minute(rng: np.random.Generator, accuracy: float) -> Look:
    return Look(Window(quality=Labelled(rows=60, correct=float(rng.binomial(60, accuracy)))))


def watch(accuracies: list[float], seed: int = 0, **changes: Any) -> list[monitoring.Checked]:
    rng = np.random.default_rng(seed)
    status: MonitoringStatus | None = None
    out = []
    for i, accuracy in enumerate(accuracies):
        checked = monitoring.check(spec(**changes), status, "r1", T0 + timedelta(minutes=i),
                                   minute(rng, accuracy))  # fmt: skip
        status = checked.status
        out.append(checked)
    return out


def test_a_breach_that_lasts_begins_one_episode_and_only_one() -> None:
    checks = watch([0.6] * 40)
    began = [i for i, c in enumerate(checks) if c.began is not None]
    assert len(began) == 1  # never twice for the same episode
    first = checks[began[0]]
    assert first.began is not None
    assert first.began.metric == "accuracy"
    # It began once the breach had lasted `for` (10 minutes) after it was first seen.
    assert began[0] - next(i for i, c in enumerate(checks) if c.status.breaches) == 10
    assert checks[-1].status.episode == first.status.episode
    assert "accuracy" in monitoring.describe(spec(), first.status, first.began)


def test_a_healthy_stable_never_begins_an_episode() -> None:
    for seed in range(20):
        assert not any(c.began for c in watch([0.9] * 120, seed=seed))


def test_a_breach_shorter_than_for_begins_nothing_and_recovery_ends_the_episode() -> None:
    short = watch([0.6] * 5 + [0.95] * 30)
    assert not any(c.began for c in short)
    assert short[-1].status.breaches == []

    long = watch([0.6] * 20 + [0.95] * 30 + [0.6] * 20)
    began = [i for i, c in enumerate(long) if c.began is not None]
    ended = [i for i, c in enumerate(long) if c.ended]
    assert len(began) == 2  # a new episode after the first ended
    assert len(ended) == 1
    assert began[0] < ended[0] < began[1]
    assert long[began[0]].status.episode != long[began[1]].status.episode


def test_no_new_evidence_changes_nothing_and_a_new_stable_starts_a_new_watch() -> None:
    checked = watch([0.6] * 15)[-1].status
    assert monitoring.check(spec(), checked, "r1", T0, None).status == checked
    fresh = monitoring.check(spec(), checked, "r2", T0, None).status
    assert fresh.revision == "r2"
    assert fresh.episode is None
    assert fresh.breaches == []
