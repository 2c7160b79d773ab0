"""kstatus conditions follow the phase: Flux's health checks read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pitstop.api.status import Condition, ModelDeploymentStatus, RevisionStatus
from pitstop.strategies import phase

NOW = datetime(2026, 11, 29, tzinfo=UTC)
STABLE = RevisionStatus(revision="r1", version="1", image="i:1")
CANDIDATE = RevisionStatus(revision="r2", version="2", image="i:2")


def ready(status: str = "True") -> Condition:
    return Condition(type="Ready", status=status, reason="StableAvailable")


def kstatus(status: ModelDeploymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions
            if c.type in ("Reconciling", "Stalled")}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "phase_", "reconciling", "stalled"),
    [
        (ModelDeploymentStatus(), "Pending", "True", "False"),
        (ModelDeploymentStatus(stable=STABLE, conditions=[ready()]), "Healthy", "False", "False"),
        (
            ModelDeploymentStatus(stable=STABLE, candidate=CANDIDATE, conditions=[ready()]),
            "Progressing",
            "True",
            "False",
        ),
        (
            ModelDeploymentStatus(
                stable=STABLE,
                candidate=CANDIDATE,
                conditions=[
                    ready(),
                    Condition(type="Paused", status="True", reason="AwaitingPromotion"),
                ],
            ),
            "Paused",
            "True",
            "False",
        ),
        (
            ModelDeploymentStatus(stable=STABLE, conditions=[ready("False")]),
            "Degraded",
            "False",
            "True",
        ),
        (
            ModelDeploymentStatus(
                stable=STABLE, revision="r2", rejected_revision="r2", conditions=[ready()]
            ),
            "RolledBack",
            "False",
            "True",
        ),
    ],
)
def test_reconciling_and_stalled_follow_the_phase(
    status: ModelDeploymentStatus, phase_: str, reconciling: str, stalled: str
) -> None:
    settled = phase.settle(status.model_copy(update={"message": "why"}), 4, NOW)
    assert settled.phase == phase_
    assert kstatus(settled) == {"Reconciling": (reconciling, phase_), "Stalled": (stalled, phase_)}
    on = [
        c for c in settled.conditions if c.type in ("Reconciling", "Stalled") and c.status == "True"
    ]
    assert all(c.message == "why" and c.observed_generation == 4 for c in on)


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = phase.settle(ModelDeploymentStatus(), 1, NOW)
    later = phase.settle(first, 1, NOW + timedelta(minutes=5))
    moved = phase.settle(later.model_copy(update={"stable": STABLE, "conditions": [
        *later.conditions, ready()]}), 1, NOW + timedelta(minutes=9))  # fmt: skip
    times = {c.type: c.last_transition_time for c in later.conditions}
    assert times["Reconciling"] == NOW
    assert {c.type: c.last_transition_time for c in moved.conditions}[
        "Reconciling"
    ] == NOW + timedelta(minutes=9)
