"""The simplest rollout: bring the spec's revision up, then switch all traffic to it.

This is the first reconcile of a ModelDeployment and the fallback every richer
strategy builds on: the first revision becomes stable once its Deployment is
available; a later revision runs beside the stable one and takes over only when it is
available, so users never reach pods that are not ready. Revisions that are neither
stable nor the spec's are removed, which also cleans up after an interrupted run.
"""

from __future__ import annotations

from datetime import datetime

from pitstop.api.resource import ModelDeployment
from pitstop.api.status import (
    Condition,
    ConditionStatus,
    HistoryEntry,
    ModelDeploymentStatus,
    RevisionStatus,
    TrafficStatus,
)
from pitstop.strategies import conditions, phase
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import (
    Action,
    Decision,
    DeleteRevision,
    EnsureRevision,
    Event,
    Observations,
    RouteEntry,
    ScaleRevision,
)

# How often to look again while waiting for pods (watch events usually come first).
POLL_SECONDS = 10.0


def decide(md: ModelDeployment, seen: Observations, now: datetime) -> Decision:
    spec, status = md.spec, md.status
    generation = md.metadata.generation
    replicas = spec.serving.replicas
    stable = status.stable
    candidate = status.candidate
    history = list(status.history)
    events: list[Event] = []
    actions: list[Action] = []
    conds = list(status.conditions)

    if seen.image is None:
        conds = conditions.set_condition(
            conds, conditions.IMAGE_BUILT, "False", Reason.BUILD_UNAVAILABLE,
            "spec.image is empty and in-cluster image builds are not available in this "
            "version of Pitstop; set spec.image to a prebuilt serving image",
            generation, now,
        )  # fmt: skip
        keep = {stable.revision} if stable else set()
        if stable is not None:
            actions += [ScaleRevision(stable.revision, replicas), RouteEntry(stable.revision)]
    else:
        conds = conditions.set_condition(
            conds, conditions.IMAGE_BUILT, "True", Reason.IMAGE_PROVIDED,
            f"serving image {seen.image}", generation, now,
        )  # fmt: skip
        target = seen.revision
        if candidate is not None and candidate.revision != target:
            # The spec moved on while a rollout ran: that candidate is superseded.
            history.append(_record(candidate, now, "Superseded", "the spec changed"))
            events.append(Event("Normal", Reason.SUPERSEDED, f"revision {candidate.revision} "
                                f"superseded by {target}"))  # fmt: skip
            candidate = None
        if stable is not None and stable.revision == target:
            candidate = None
            actions += [EnsureRevision(target, replicas), RouteEntry(target)]
            keep = {target}
        else:
            if candidate is None:
                candidate = RevisionStatus(
                    revision=target, version=spec.model.version, image=seen.image, since=now
                )
            actions.append(EnsureRevision(target, replicas))
            keep = {target}
            if stable is not None:
                keep.add(stable.revision)
                actions.append(ScaleRevision(stable.revision, replicas))
            state = seen.revisions.get(target)
            if state is not None and state.available:
                if stable is not None:
                    history = _retire(history, stable, now)
                stable = candidate.model_copy(update={"since": now})
                history.append(_record(stable, now, "Promoted", "available", ended=False))
                events.append(Event("Normal", Reason.PROMOTED, f"revision {target} (version "
                                    f"{stable.version}) now serves all traffic"))  # fmt: skip
                candidate = None
                keep = {target}
            actions.append(RouteEntry(stable.revision if stable else target))

    actions += [DeleteRevision(r) for r in sorted(seen.revisions) if r not in keep]
    conds = _health_conditions(conds, stable, candidate, seen, replicas, generation, now)
    split = TrafficStatus(stable=100 if stable else 0, summary=phase.traffic_summary(
        100 if stable else 0, 0, 0))  # fmt: skip
    new = ModelDeploymentStatus(
        observed_generation=generation,
        stable=stable,
        candidate=candidate,
        traffic=split,
        analysis=status.analysis,
        conditions=conds,
        history=history,
    )
    new_phase = phase.of(new)
    new = new.model_copy(update={"phase": new_phase, "message": _message(new, new_phase)})
    if status.phase is not None and new_phase != status.phase:
        kind = "Warning" if new_phase in ("Degraded", "Failed", "RolledBack") else "Normal"
        events.append(Event(kind, new_phase, new.message))
    settled = new_phase == "Healthy"
    return Decision(tuple(actions), new, tuple(events), None if settled else POLL_SECONDS)


def _health_conditions(
    conds: list[Condition],
    stable: RevisionStatus | None,
    candidate: RevisionStatus | None,
    seen: Observations,
    replicas: int,
    generation: int,
    now: datetime,
) -> list[Condition]:
    def put(type_: str, value: ConditionStatus, reason: str, message: str) -> None:
        nonlocal conds
        conds = conditions.set_condition(conds, type_, value, reason, message, generation, now)

    if stable is None:
        put(conditions.READY, "False", Reason.NO_STABLE, "no revision is serving yet")
    else:
        state = seen.revisions.get(stable.revision)
        ready = state.ready_replicas if state else 0
        if state is not None and state.available:
            put(conditions.READY, "True", Reason.STABLE_AVAILABLE,
                f"version {stable.version} (revision {stable.revision}) serves with "
                f"{ready}/{replicas} ready replicas")  # fmt: skip
        else:
            put(conditions.READY, "False", Reason.STABLE_UNAVAILABLE,
                f"stable revision {stable.revision} has {ready}/{replicas} ready replicas")  # fmt: skip
    if candidate is None:
        put(conditions.PROGRESSING, "False", Reason.ROLLOUT_COMPLETE, "no rollout in progress")
    else:
        state = seen.revisions.get(candidate.revision)
        ready = state.ready_replicas if state else 0
        put(conditions.PROGRESSING, "True", Reason.ROLLOUT_IN_PROGRESS,
            f"waiting for revision {candidate.revision} (version {candidate.version}): "
            f"{ready}/{replicas} ready replicas")  # fmt: skip
    put(conditions.DEGRADED, "False", Reason.AS_EXPECTED, "")
    return conds


def _record(
    revision: RevisionStatus, now: datetime, outcome: str, reason: str, ended: bool = True
) -> HistoryEntry:
    return HistoryEntry.model_validate(
        {
            "revision": revision.revision,
            "version": revision.version,
            "image": revision.image,
            "startedAt": revision.since,
            "endedAt": now if ended else None,
            "outcome": outcome,
            "reason": reason,
        }
    )


def _retire(
    history: list[HistoryEntry], stable: RevisionStatus, now: datetime
) -> list[HistoryEntry]:
    """Close the open record of the revision that stops serving."""
    closed = [
        h.model_copy(update={"ended_at": now, "outcome": "Retired", "reason": "replaced"})
        if h.revision == stable.revision and h.ended_at is None
        else h
        for h in history
    ]
    return closed


def _message(status: ModelDeploymentStatus, current: str) -> str:
    if current == "Failed" or current == "Building" or current == "Degraded":
        for type_ in (conditions.READY, conditions.IMAGE_BUILT):
            condition = conditions.find(status.conditions, type_)
            if condition is not None and condition.status != "True":
                return condition.message
    progressing = conditions.find(status.conditions, conditions.PROGRESSING)
    if status.candidate is not None and progressing is not None:
        return progressing.message
    ready = conditions.find(status.conditions, conditions.READY)
    return ready.message if ready is not None else ""
