"""The working state of one rollout decision, and the moves every strategy shares.

`Rollout` starts from the status in hand and the observations; the engine and the
strategy modules only set its fields (actions, next statuses, conditions, events).
It sits below both: the engine runs the sequence, each strategy drives its candidate
state, and neither needs the other's module.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pitstop.api import durations
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import (
    ConditionStatus,
    HistoryEntry,
    Outcome,
    RevisionStatus,
)
from pitstop.strategies import conditions, shares
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import (
    Action,
    EnsureRevision,
    Event,
    Observations,
    ScaleRevision,
    SetTraffic,
)

# How often to look again while waiting (watch events usually come first).
POLL_SECONDS = 10.0


class Rollout:
    """The working state of one decision; every method only reads inputs and sets fields."""

    def __init__(self, md: ModelDeployment, seen: Observations, now: datetime) -> None:
        self.md, self.seen, self.now = md, seen, now
        self.spec = md.spec
        self.replicas = md.spec.serving.replicas
        old = md.status
        self.stable = old.stable
        self.candidate = old.candidate
        self.previous = old.previous
        self.decommissioned = old.decommissioned
        self.rejected = old.rejected_revision
        self.last_request = old.last_request
        self.history = list(old.history)
        self.conds = list(old.conditions)
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.wake: list[float] = []
        self.split: SetTraffic | None = None
        self.promote_requested = False
        self.paused: str | None = None
        self.paused_reason = Reason.AWAITING_PROMOTION
        self.progress = (Reason.ROLLOUT_IN_PROGRESS, "")
        self.degraded: str | None = None
        self.degraded_reason = Reason.ANALYSIS_FAILED
        self.routed = seen.traffic.verified
        """The split of the candidate's current state and step is known to be in place."""

    def current(self) -> RevisionStatus:
        """The candidate as this pass left it so far (a check may have updated it)."""
        assert self.candidate is not None
        return self.candidate

    def hold(self) -> None:
        """Nothing new rolls out: the stable keeps serving, all traffic on it."""
        if self.stable is not None:
            self.scale(self.stable.revision, self.replicas)
            self.split = SetTraffic(stable=self.stable.revision)

    def scale(self, revision: str, replicas: int) -> None:
        state = self.seen.revisions.get(revision)
        if state is not None and state.replicas != replicas:
            self.actions.append(ScaleRevision(revision, replicas))

    def promote(self, scale_down_delay: str) -> None:
        """The candidate becomes stable; the old stable stays up for `scale_down_delay`."""
        candidate, old = self.candidate, self.stable
        assert candidate is not None
        assert old is not None
        new = candidate.model_copy(update={"since": self.now, "state": None, "step": None,
                                           "step_started_at": None, "waiting_since": None})  # fmt: skip
        self.close(old.revision, "Retired", f"replaced by revision {new.revision}")
        self.history.append(self.record(new, "Promoted", "rollout complete", ended=False))
        self.stable, self.candidate = new, None
        # The old stable stays up through the scale-down delay and the post-promotion
        # analysis window, whichever is longer: a late failure can still go back to it.
        # Past the delay it waits at its minimum (one pod; see `minimum`): a window of
        # hours or days for delayed labels must not cost a second full copy of the model.
        full = durations.parse(scale_down_delay)
        delay = max(full, durations.parse(self.spec.analysis.post_promotion_window))
        self.previous = None
        if delay > timedelta(0):
            full_until = self.now + full if full < delay else None
            self.previous = old.model_copy(
                update={"until": self.now + delay, "full_until": full_until}
            )
            self.scale(old.revision, self.replicas if full > timedelta(0) else self.minimum())
            self.wake.append((full if full_until is not None and full else delay).total_seconds())
        if EnsureRevision(new.revision, self.replicas) not in self.actions:
            self.actions.append(EnsureRevision(new.revision, self.replicas))
        self.split = SetTraffic(stable=new.revision)
        self.note(Reason.PROMOTED, f"revision {new.revision} (version {new.version}) now "
                  "serves all traffic")  # fmt: skip

    def minimum(self) -> int:
        """The replicas a previous stable waits at past its scale-down delay: one ready
        pod answers users at once after a rollback while the rest start."""
        return min(1, self.replicas)

    def end_candidate(self, outcome: Outcome, reason: str, *, reject: bool) -> None:
        candidate = self.candidate
        assert candidate is not None
        self.history.append(self.record(candidate, outcome, reason))
        self.candidate = None
        if reject:
            self.rejected = candidate.revision
        kind = "Normal" if outcome == "Superseded" else "Warning"
        self.events.append(Event(kind, outcome, f"revision {candidate.revision}: {reason}"))

    def effective_weight(self, weight: int) -> int:
        """What users really get: exact, or the replica ratio for the service provider."""
        return shares.effective_weight(self.replicas, weight, self.seen.traffic.weights_by_replicas)

    def put(self, type_: str, value: ConditionStatus, reason: str, message: str) -> None:
        self.conds = conditions.set_condition(
            self.conds, type_, value, reason, message, self.md.metadata.generation, self.now
        )

    def note(self, reason: str, message: str) -> None:
        self.events.append(Event("Normal", reason, message))

    def warn(self, reason: str, message: str) -> None:
        self.events.append(Event("Warning", reason, message))

    def close(self, revision: str, outcome: Outcome, reason: str) -> None:
        """End the open history record of `revision` (the one that was serving)."""
        self.history = [
            h.model_copy(update={"ended_at": self.now, "outcome": outcome, "reason": reason})
            if h.revision == revision and h.ended_at is None
            else h
            for h in self.history
        ]

    def record(
        self, revision: RevisionStatus, outcome: Outcome, reason: str, *, ended: bool = True
    ) -> HistoryEntry:
        return HistoryEntry(
            revision=revision.revision, version=revision.version, image=revision.image,
            started_at=revision.since, ended_at=self.now if ended else None,
            outcome=outcome, reason=reason, requests=revision.requests,
        )  # fmt: skip
