"""Evidence-driven steps: a canary step (or shadow phase) ends as soon as the analysis
passes after its minimum, rolls back as soon as it fails, and when its pause runs out
still inconclusive does what `analysis.onInconclusive` says.

Each row: (step settings, seconds into the step, verdict, onInconclusive) -> what the
candidate does: "advance" (next step or promotion), "wait", "held" (waits, saying it
lacks evidence) or "rolled back".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.strategies import conditions, engine
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import Checks, ImageState, Observations, RevisionState, Traffic
from pitstop.strategies.requests import Request

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
UP = RevisionState(replicas=2, ready_replicas=2, available=True)


def model(step: dict[str, Any], seconds: float, analysis: dict[str, Any] | None = None,
          strategy: dict[str, Any] | None = None) -> ModelDeployment:  # fmt: skip
    started = NOW - timedelta(seconds=seconds)
    strategy = strategy or {"type": "Canary", "canary": {"steps": [step, {"weight": 50}]}}
    state = "Shadow" if strategy["type"] == "Shadow" else "Canary"
    return ModelDeployment.model_validate({
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"model": {"name": "fraud", "version": "7"}, "image": "reg/fraud:7",
                 "serving": {"replicas": 2}, "strategy": strategy, "analysis": analysis or {}},
        "status": {
            "stable": {"revision": "old", "version": "6", "image": "reg/fraud:6"},
            "candidate": {"revision": "new", "version": "7", "image": "reg/fraud:7",
                          "state": state, "step": 0 if state == "Canary" else None,
                          "stepStartedAt": started},
        },
    })  # fmt: skip


def outcome(md: ModelDeployment, verdict: str | None, request: Request | None = None) -> str:
    seen = Observations(
        "new", ImageState("reg/fraud:7"), {"old": UP, "new": UP}, Traffic(),
        Checks(verdict, "errors needs about 1,800 more requests") if verdict else Checks(),
        request=request,
    )  # fmt: skip
    status = engine.decide(md, seen, NOW).status
    candidate = status.candidate
    progressing = conditions.find(status.conditions, conditions.PROGRESSING)
    assert progressing is not None
    if candidate is None:
        return "rolled back" if status.phase == "RolledBack" else "advance"
    if candidate.step == 1:
        return "advance"
    if progressing.reason == Reason.INSUFFICIENT_EVIDENCE:
        assert "needs about 1,800 more requests" in progressing.message
        return "held"
    return "wait"


TIMED = {"weight": 10, "pause": "1m"}
WITH_MIN = {"weight": 10, "pause": "1m", "minPause": "20s"}


@pytest.mark.parametrize(
    ("step", "seconds", "verdict", "on_inconclusive", "expected"),
    [
        (TIMED, 5, "Pass", "Hold", "advance"),  # evidence settles it: no need to wait 1m
        (WITH_MIN, 5, "Pass", "Hold", "wait"),  # ... but not before the step's minimum
        (WITH_MIN, 25, "Pass", "Hold", "advance"),
        (TIMED, 30, "Inconclusive", "Hold", "wait"),  # still within the pause
        (TIMED, 90, "Inconclusive", "Hold", "held"),
        (TIMED, 90, "Inconclusive", "Rollback", "rolled back"),
        (TIMED, 90, "Inconclusive", "Promote", "advance"),
        (TIMED, 5, "Fail", "Hold", "rolled back"),  # a failure never waits
        (TIMED, 30, None, "Hold", "wait"),  # no analysis: the pause is a fixed pause
        (TIMED, 61, None, "Hold", "advance"),
    ],
)  # fmt: skip
def test_canary_step(
    step: dict[str, Any], seconds: float, verdict: str | None, on_inconclusive: str,
    expected: str,
) -> None:  # fmt: skip
    md = model(step, seconds, {"onInconclusive": on_inconclusive})
    assert outcome(md, verdict) == expected


def test_a_held_step_says_so_in_the_status_message() -> None:
    seen = Observations("new", ImageState("reg/fraud:7"), {"old": UP, "new": UP}, Traffic(),
                        Checks("Inconclusive", "errors needs about 1,800 more requests"))  # fmt: skip
    status = engine.decide(model(TIMED, 90), seen, NOW).status
    assert status.phase == "Progressing"
    assert "held (onInconclusive: Hold): no verdict after 1m" in status.message
    assert "1,800 more requests" in status.message


def test_promote_ends_a_timed_step_early() -> None:
    md = model(TIMED, 5)
    assert outcome(md, "Inconclusive", Request("promote", "r1")) == "advance"


def test_a_waiting_step_wakes_at_its_pause_end() -> None:
    seen = Observations("new", ImageState("reg/fraud:7"), {"old": UP, "new": UP}, Traffic(),
                        Checks("Inconclusive", "x"))  # fmt: skip
    decision = engine.decide(model(TIMED, 45), seen, NOW)
    assert decision.requeue_after == pytest.approx(15)


def test_waiting_for_the_route_says_what_it_waits_for() -> None:
    seen = Observations("new", ImageState("reg/fraud:7"), {"old": UP, "new": UP},
                        Traffic(verified=False, message=""), Checks("Pass"))  # fmt: skip
    status = engine.decide(model(TIMED, 5), seen, NOW).status
    assert not status.message.endswith(": ")
    assert "waiting for the route to show it" in status.message


SHADOW = {"type": "Shadow", "shadow": {"duration": "10m", "minDuration": "1m"}}


@pytest.mark.parametrize(
    ("seconds", "verdict", "expected"),
    [(30, "Pass", "wait"), (90, "Pass", "advance"), (90, "Inconclusive", "wait"),
     (700, "Inconclusive", "held")],
)  # fmt: skip
def test_shadow_phase(seconds: float, verdict: str, expected: str) -> None:
    md = model({}, seconds, strategy=SHADOW)
    assert outcome(md, verdict) == expected
