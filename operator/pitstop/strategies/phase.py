"""The phase is a pure function of the status: computed last, never stored as input."""

from __future__ import annotations

from datetime import datetime

from pitstop.api.status import ModelDeploymentStatus, Phase
from pitstop.strategies import conditions
from pitstop.strategies.conditions import Reason


def of(status: ModelDeploymentStatus) -> Phase:
    ready = conditions.find(status.conditions, conditions.READY)
    if ready is not None and ready.reason == Reason.INVALID_SPEC:
        return "Failed"
    if status.decommissioned is not None:
        return "Decommissioned"
    if status.stable is None:
        image = conditions.find(status.conditions, conditions.IMAGE_BUILT)
        if status.candidate is not None:
            progressing = conditions.find(status.conditions, conditions.PROGRESSING)
            stalled = progressing is not None and progressing.reason in conditions.STALLED
            return "Failed" if stalled else "Deploying"
        if image is not None and image.status != "True":
            return "Building" if image.reason == Reason.BUILDING else "Pending"
        return "Pending"
    if status.candidate is not None:
        return (
            "Paused" if conditions.is_true(status.conditions, conditions.PAUSED) else "Progressing"
        )
    if ready is None or ready.status != "True":
        return "Degraded"
    if status.rejected_revision is not None and status.rejected_revision == status.revision:
        return "RolledBack"
    return "Healthy"


# kstatus (sigs.k8s.io/cli-utils), which Flux's health checks and `kubectl wait` tools
# read, knows custom resources by two abnormal-true conditions: Reconciling (not there
# yet) and Stalled (will not get there without help). Both follow the phase; a
# decommissioned one is Reconciling until its revisions are gone, then Current: it is
# where it was asked to be, and a Flux health check does not fail on it.
RECONCILING_PHASES = frozenset({"Pending", "Building", "Deploying", "Progressing", "Paused"})
STALLED_PHASES = frozenset({"Degraded", "RolledBack", "Failed"})


def settle(status: ModelDeploymentStatus, generation: int, now: datetime) -> ModelDeploymentStatus:
    """`status` with its phase, computed afresh, and the kstatus conditions that follow
    it (while true they carry the status message)."""
    new_phase = of(status)
    message = status.message
    conds = list(status.conditions)
    for type_, phases in (("Reconciling", RECONCILING_PHASES), ("Stalled", STALLED_PHASES)):
        on = new_phase in phases or (
            type_ == "Reconciling"
            and status.decommissioned is not None
            and status.decommissioned.completed_at is None
        )
        conds = conditions.set_condition(
            conds, type_, "True" if on else "False", new_phase, message if on else "",
            generation, now,
        )  # fmt: skip
    return status.model_copy(update={"phase": new_phase, "conditions": conds})


def traffic_summary(stable: int, candidate: int, mirrored: int) -> str:
    """The Traffic printer column: '100% stable', '90% / 10%', '100% + 50% mirrored'."""
    if candidate == 0 and mirrored == 0:
        return f"{stable}% stable" if stable else "none"
    text = f"{stable}% / {candidate}%" if candidate else f"{stable}% stable"
    return f"{text} + {mirrored}% mirrored" if mirrored else text
