"""The phase is a pure function of the status: computed last, never stored as input."""

from __future__ import annotations

from pitstop.api.status import ModelDeploymentStatus, Phase
from pitstop.strategies import conditions
from pitstop.strategies.conditions import Reason


def of(status: ModelDeploymentStatus) -> Phase:
    ready = conditions.find(status.conditions, conditions.READY)
    if ready is not None and ready.reason == Reason.INVALID_SPEC:
        return "Failed"
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


def traffic_summary(stable: int, candidate: int, mirrored: int) -> str:
    """The Traffic printer column: '100% stable', '90% / 10%', '100% + 50% mirrored'."""
    if candidate == 0 and mirrored == 0:
        return f"{stable}% stable" if stable else "none"
    text = f"{stable}% / {candidate}%" if candidate else f"{stable}% stable"
    return f"{text} + {mirrored}% mirrored" if mirrored else text
