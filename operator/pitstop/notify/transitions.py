"""Which rollout transitions one committed pass made, read from the status before and
after it and the Events it posted. Pure.

Started and step advanced come from the pass's Events; held from the Progressing
condition turning to InsufficientEvidence (it stays so on every later pass, so only the
turn counts); promoted, rolled back and aborted from history entries getting their
outcome — each happens in exactly one committed pass, so each is told once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import NotifyOn
from pitstop.api.status import MetricResult, ModelDeploymentStatus
from pitstop.strategies import conditions, history
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import Event

_BY_EVENT: dict[str, NotifyOn] = {
    Reason.ROLLOUT_STARTED: "RolloutStarted",
    Reason.STEP_ADVANCED: "StepAdvanced",
}
_BY_OUTCOME: dict[str, NotifyOn] = {
    "Promoted": "Promoted", "RolledBack": "RolledBack", "Aborted": "Aborted",
}  # fmt: skip


@dataclass(frozen=True)
class Transition:
    kind: NotifyOn
    namespace: str
    name: str
    strategy: str
    message: str
    time: datetime
    version: str | None
    revision: str | None
    stable_version: str | None
    metric: MetricResult | None = None
    """What decided it: the failing metric of a rollback, else None."""
    metrics: tuple[MetricResult, ...] = ()
    """Every analysis metric of the revision, as judged last."""


def transitions(
    md: ModelDeployment,
    before: ModelDeploymentStatus,
    after: ModelDeploymentStatus,
    events: Sequence[Event],
    now: datetime,
) -> list[Transition]:
    found: list[Transition] = []
    candidate = after.candidate or before.candidate
    stable = after.stable.version if after.stable else None

    def add(kind: NotifyOn, message: str, version: str | None, revision: str | None) -> None:
        analysis = (
            after.analysis if after.analysis and after.analysis.revision == revision else None
        )
        metrics = tuple(analysis.metrics) if analysis else ()
        failed = [m for m in metrics if m.verdict == "Fail"]
        found.append(Transition(
            kind, md.metadata.namespace, md.metadata.name, md.spec.strategy.type, message,
            now, version, revision, stable,
            metric=failed[0] if failed and kind in ("RolledBack", "Aborted") else None,
            metrics=metrics,
        ))  # fmt: skip

    for event in events:
        kind = _BY_EVENT.get(event.reason)
        if kind is not None and candidate is not None:
            add(kind, event.message, candidate.version, candidate.revision)
    held = _progressing(after) == Reason.INSUFFICIENT_EVIDENCE
    if held and _progressing(before) != Reason.INSUFFICIENT_EVIDENCE and candidate is not None:
        add("Held", _progress_message(after), candidate.version, candidate.revision)
    for entry in history.ended(before.history, after.history):
        kind = _BY_OUTCOME.get(entry.outcome or "")
        if kind is not None:
            add(kind, entry.reason or after.message, entry.version, entry.revision)
    return found


def _progressing(status: ModelDeploymentStatus) -> str | None:
    found = conditions.find(status.conditions, conditions.PROGRESSING)
    return found.reason if found is not None else None


def _progress_message(status: ModelDeploymentStatus) -> str:
    found = conditions.find(status.conditions, conditions.PROGRESSING)
    return found.message if found is not None else status.message
