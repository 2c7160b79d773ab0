"""The rollout engine: one pure function from (spec, status, observations, now) to a Decision.

A ModelDeployment has at most three live revisions: `stable` (serves users),
`candidate` (being rolled out) and `previous` (the stable before the last promotion,
kept up for an instant rollback). The engine runs a fixed sequence — manual requests,
image, the previous stable's window, the rollout, retirement, status — and hands the
candidate to the strategy registered for its state: the strategy modules (`canary`,
`bluegreen`, `shadow`) register themselves here, so the engine never imports them.
It never changes the stable revision's pods: it only scales them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pitstop.api import durations
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import ModelDeploymentSpec, StrategyType
from pitstop.api.status import (
    CandidateState,
    ModelDeploymentStatus,
    RevisionStatus,
    TrafficStatus,
)
from pitstop.strategies import (
    audit,
    conditions,
    decommission,
    history,
    phase,
    progress,
    shares,
)
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import (
    Action,
    Decision,
    DeleteRevision,
    EnsureRevision,
    Event,
    Observations,
    ScaleRevision,
    SetTraffic,
)
from pitstop.strategies.requests import Request
from pitstop.strategies.working import POLL_SECONDS, Rollout


@dataclass(frozen=True)
class Strategy:
    """What a strategy module tells the engine about itself."""

    kind: StrategyType
    """The spec.strategy.type that starts with it."""
    state: CandidateState
    """The candidate state it drives."""
    step: Callable[[Rollout], None]
    """One decision for a candidate in that state."""
    split: Callable[[ModelDeployment], SetTraffic]
    """The routing the provider must already show in that state before it may advance."""
    first_weight: Callable[[ModelDeploymentSpec], int]
    """The weight it will start at, which sizes the candidate while it starts."""
    stepped: bool
    """Whether the candidate moves through numbered steps."""


STATES: dict[CandidateState, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    STATES[strategy.state] = strategy
    return strategy


def decide(md: ModelDeployment, seen: Observations, now: datetime) -> Decision:
    return Run(md, seen, now).run()


def current_split(md: ModelDeployment) -> SetTraffic | None:
    """The routing the status in hand implies: what the provider must already show
    before a step that depends on it (a canary weight, a shadow mirror) may advance."""
    status = md.status
    if status.decommissioned is not None:
        return SetTraffic(stable=None)
    if status.stable is None:
        return None
    candidate = status.candidate
    if candidate is not None and candidate.state in STATES:
        return STATES[candidate.state].split(md)
    return SetTraffic(stable=status.stable.revision)


class Run(Rollout):
    """The engine's sequence over the working state."""

    def run(self) -> Decision:
        self._request()
        if self.decommissioned is not None:
            decommission.keep(self)  # for good: the spec no longer brings pods up
        else:
            self._image()
            self._previous()
            self._rollout()
            self._retire()
        return self._finish()

    def _request(self) -> None:
        """Handle a new manual request once, and record it (see `audit`)."""
        request = self.seen.request
        if request is None or request.id == self.last_request:
            return
        self.last_request = request.id
        about = audit.about(self, request)
        refusal = self._handle(request, audit.asked(request))
        if refusal is not None:
            self.warn(Reason.BAD_REQUEST, f"{refusal} {audit.asked(request)}")
        for revision in about:
            audit.keep(self, revision, audit.entry(request, self.now, refusal))

    def _handle(self, request: Request, asked: str) -> str | None:
        """Carry out `request`; None when done, else why it was refused."""
        candidate = self.candidate
        if self.decommissioned is not None and request.action != "decommission":
            return f"{request.action} asked, but the ModelDeployment is decommissioned"
        if request.action == "promote":
            if candidate is None:
                return "promote asked, but no rollout is in progress"
            self.promote_requested = True
            self.note("PromoteRequested", f"promote of revision {candidate.revision} asked {asked}")
        elif request.action == "abort":
            if candidate is None or candidate.state == "Restoring":
                return "abort asked, but no rollout is in progress"
            self.end_candidate("Aborted", f"aborted by request {asked}", reject=True)
        elif request.action == "decommission":
            return decommission.start(self, request)
        elif request.action == "retry":
            if self.rejected is None:
                return "retry asked, but no revision was rejected"
            self.note(Reason.RETRY, f"revision {self.rejected} may be rolled out again {asked}")
            self.rejected = None
        else:
            return self._undo(request.revision or "", asked)
        return None

    def _undo(self, target: str, asked: str) -> str | None:
        record = next((h for h in reversed(self.history) if h.revision == target), None)
        if self.stable is not None and target == self.stable.revision:
            return f"undo asked, but revision {target} already serves"
        if record is None or target not in self.seen.revisions:
            return f"undo asked, but revision {target} is not retained"
        if self.candidate is not None:
            self.end_candidate("Aborted", f"undo to revision {target} asked {asked}", reject=False)
        self.candidate = RevisionStatus(
            revision=target, version=record.version, image=record.image,
            since=self.now, state="Restoring", step_started_at=self.now,
        )  # fmt: skip
        self.rejected = self.seen.revision if self.seen.revision != target else None
        self.note(Reason.UNDO, f"going back to revision {target} (version {record.version}) "
                  f"{asked}")  # fmt: skip
        return None

    def _image(self) -> None:
        image = self.seen.image
        self.put(conditions.IMAGE_BUILT, image.status, image.reason, image.message)

    def _previous(self) -> None:
        """Keep the previous stable up during its window; go back to it on a failure."""
        previous = self.previous
        if previous is None:
            return
        if previous.revision not in self.seen.revisions:
            self.previous = None
        elif self.candidate is not None and self.candidate.revision == previous.revision:
            self.previous = None  # an undo brings it back: it is the candidate now
        elif self.candidate is not None:
            self._end_window(self.candidate.revision)
        elif self.seen.checks.verdict == "Fail" and self.candidate is None and self.stable:
            failed = self.stable
            self.close(failed.revision, "RolledBack", self.seen.checks.message)
            self.degraded = f"revision {failed.revision} failed after promotion: " + (
                self.seen.checks.message or "checks failed"
            )
            # Traffic moves at once, even to a previous waiting at one pod: users stop
            # hitting a model known to be bad now, and `_rollout` scales it back to
            # full size in this same pass (ahead of the switch, see `_finish`).
            state = self.seen.revisions.get(previous.revision)
            short = state is not None and state.replicas < self.replicas
            self.stable = previous.model_copy(
                update={"since": self.now, "until": None, "full_until": None,
                        "waiting_since": self.now if short else None}
            )  # fmt: skip
            self.history.append(self.record(self.stable, "Promoted", "rolled back to", ended=False))
            self.rejected = failed.revision
            self.previous = None
            self.warn(Reason.ROLLED_BACK, self.degraded)
        elif previous.until is not None and self.now < previous.until:
            full = previous.full_until is None or self.now < previous.full_until
            self.scale(previous.revision, self.replicas if full else self.minimum())
            next_change = previous.full_until if full and previous.full_until else previous.until
            self.wake.append((next_change - self.now).total_seconds())
        else:
            self.previous = None  # its window is over: retired below

    def _end_window(self, candidate: str) -> None:
        """A new rollout ends the previous stable's window: the analysis moves to the
        candidate, so nothing would go back to the previous any more, and with the
        `service` provider a canary's Service selects every pod of the ModelDeployment,
        so the previous would answer users beside it. It is retired (scaled to zero)."""
        assert self.previous is not None
        self.note(Reason.RETIRED, f"revision {self.previous.revision} scaled down before its "
                  f"window ended: revision {candidate} is rolling out")  # fmt: skip
        self.previous = None

    def _rollout(self) -> None:
        target = self.seen.revision
        candidate = self.candidate
        if candidate is not None and candidate.state == "Restoring":
            progress.restore(self)
            return
        if candidate is not None and candidate.revision != target:
            back = self.stable is not None and target == self.stable.revision
            why = "the spec returned to the stable revision" if back else "the spec changed"
            self.end_candidate("Superseded", why, reject=False)
        if self.rejected is not None and self.rejected != target:
            self.rejected = None  # the spec describes another revision now
        image = self.seen.image.image
        stable = self.stable
        if image is None or (stable is not None and target == self.rejected):
            self.hold()
        elif stable is None:
            progress.first(self, target, image)
        elif target == stable.revision:
            self.actions.append(EnsureRevision(target, self.replicas))
            self.split = SetTraffic(stable=target)
        elif self.seen.traffic.problem is not None:
            self.hold()
        elif self.candidate is None and self.seen.traffic.unsupported is not None:
            # It would start where its copies or weights cannot be routed: it waits, and
            # the stable keeps its routing.
            self.hold()
            self.progress = (Reason.TRAFFIC_UNAVAILABLE, self.seen.traffic.unsupported)
            self.wake.append(POLL_SECONDS)  # nothing watches what the gateway supports
        else:
            if self.candidate is None:
                self.candidate = RevisionStatus(
                    revision=target, version=self.spec.model.version, image=image,
                    since=self.now, state="Starting", step_started_at=self.now,
                )  # fmt: skip
                self.note(Reason.ROLLOUT_STARTED, f"rolling out revision {target} "
                          f"(version {self.spec.model.version}) with {self.spec.strategy.type}")  # fmt: skip
                if self.previous is not None:
                    self._end_window(target)
            self._advance()
        if self.seen.traffic.problem is not None:
            # Said on a first revision and at steady state too: nothing is routed to it.
            self.progress = (Reason.TRAFFIC_UNAVAILABLE, self.seen.traffic.problem)

    def _advance(self) -> None:
        """Bring a new candidate up (Starting), then let its state's strategy drive it."""
        candidate, stable = self.candidate, self.stable
        assert candidate is not None
        assert stable is not None
        if candidate.state in (None, "Starting"):
            strategy = next(s for s in STATES.values() if s.kind == self.spec.strategy.type)
            wanted = shares.candidate_replicas(
                self.replicas, strategy.first_weight(self.spec),
                self.seen.traffic.weights_by_replicas,
            )  # fmt: skip
            self.actions.append(EnsureRevision(candidate.revision, wanted))
            self.scale(stable.revision, self.replicas)
            self.split = SetTraffic(stable=stable.revision)
            if (
                progress.failed(self)
                or not progress.available(self, wanted)
                or not progress.smoke_passed(self)
            ):
                return
            candidate = self.current().model_copy(
                update={"state": strategy.state, "step": 0 if strategy.stepped else None,
                        "step_started_at": self.now}
            )  # fmt: skip
            self.candidate = candidate
            self.actions.clear()  # the state's own step decides this pass's actions
            self.routed = False  # what the provider verified was the split before this state
        STATES[candidate.state or "Canary"].step(self)

    def _retire(self) -> None:
        """Scale retired revisions to zero; delete those beyond revisionHistoryLimit."""
        live = {r.revision for r in (self.stable, self.candidate, self.previous) if r is not None}
        ended = {h.revision: h.ended_at or h.started_at for h in self.history}
        oldest = datetime.min.replace(tzinfo=self.now.tzinfo)
        retired = sorted(
            (r for r in self.seen.revisions if r not in live),
            key=lambda r: (ended.get(r) or oldest, r),
            reverse=True,
        )
        limit = self.spec.revision_history_limit
        for revision in retired[:limit]:
            if revision in ended:
                self.scale(revision, 0)
            else:
                self.actions.append(DeleteRevision(revision))  # unknown: a leftover
        self.actions += [DeleteRevision(r) for r in retired[limit:]]

    def _kept(self) -> set[str]:
        """Revisions whose Deployments stay: live ones, and those `_retire` keeps."""
        live = {r.revision for r in (self.stable, self.candidate, self.previous) if r is not None}
        deleted = {a.revision for a in self.actions if isinstance(a, DeleteRevision)}
        return live | (set(self.seen.revisions) - deleted)

    def _finish(self) -> Decision:
        target = self.seen.revision
        if self.decommissioned is None:
            self._health()  # a decommissioned one says so itself (`decommission.keep`)
        candidate_weight, mirrored = 0, 0
        if self.split is not None and self.split.candidate is not None:
            candidate_weight, mirrored = self.effective_weight(self.split.weight), self.split.mirror
        routed = self.split is not None and self.split.stable is not None
        stable_weight = 100 - candidate_weight if self.stable or routed else 0
        status = ModelDeploymentStatus(
            observed_generation=self.md.metadata.generation,
            revision=target,
            stable=audit.settled(self.stable),
            candidate=self.candidate,
            previous=audit.settled(self.previous),
            decommissioned=self.decommissioned,
            rejected_revision=self.rejected,
            last_request=self.last_request,
            traffic=TrafficStatus(
                stable=stable_weight, candidate=candidate_weight, mirrored=mirrored,
                summary=phase.traffic_summary(stable_weight, candidate_weight, mirrored),
            ),
            analysis=self.md.status.analysis,
            conditions=self.conds,
            history=history.bounded(self.history, self._kept()),
        )  # fmt: skip
        new_phase = phase.of(status)
        status = status.model_copy(update={"phase": new_phase})
        status = status.model_copy(update={"message": self._message(status)})
        status = phase.settle(status, self.md.metadata.generation, self.now)
        if self.md.status.phase is not None and new_phase != self.md.status.phase:
            bad = new_phase in ("Degraded", "Failed", "RolledBack")
            self.events.append(Event("Warning" if bad else "Normal", new_phase, status.message))
        # A provider with a problem (its route is missing) cannot route: asking it would
        # fail the reconcile before the status that says why is written.
        unroutable = self.seen.traffic.problem is not None
        if self.split is not None and not unroutable:
            # Traffic moves after what grows and before what shrinks: pods that traffic
            # leaves go only once it has left them. (With `service`, a promoted canary
            # shrunk from eight pods to two before the entry Service moved would fall
            # back from 80% to 50% for a moment; an old stable scaled to zero first
            # would leave its users on the pods still going.)
            grows = [a for a in self.actions if not self._shrinks(a)]
            shrinks = [a for a in self.actions if self._shrinks(a)]
            self.actions = [*grows, self.split, *shrinks]
        # Nothing watches routes: poll until the user fixes the problem (creates the route).
        settled = (
            self.candidate is None
            and new_phase in ("Healthy", "RolledBack", "Decommissioned")
            and not self.wake
            and not unroutable
        )
        # A known deadline (pause end, scale-down) is when to look again; otherwise poll
        # as a safety net while waiting — watch events on children usually come first.
        requeue = None if settled else min(self.wake or [POLL_SECONDS])
        return Decision(tuple(self.actions), status, tuple(self.events), requeue)

    def _shrinks(self, action: Action) -> bool:
        """Whether `action` takes pods (or a revision) away from what the API holds."""
        if isinstance(action, DeleteRevision):
            return True
        if isinstance(action, EnsureRevision | ScaleRevision):
            state = self.seen.revisions.get(action.revision)
            return state is not None and action.replicas < state.replicas
        return False

    def _health(self) -> None:
        stable, candidate = self.stable, self.candidate
        if stable is None:
            self.put(conditions.READY, "False", Reason.NO_STABLE, "no revision is serving yet")
        else:
            state = self.seen.revisions.get(stable.revision)
            ready = state.ready_replicas if state else 0
            if state is not None and state.available:
                self.put(conditions.READY, "True", Reason.STABLE_AVAILABLE,
                         f"version {stable.version} (revision {stable.revision}) serves with "
                         f"{ready}/{state.replicas} ready replicas")  # fmt: skip
                if stable.waiting_since is not None and state.replicas >= self.replicas:
                    self.stable = stable.model_copy(update={"waiting_since": None})
            elif ready > 0 and self._growing(stable):
                self.put(conditions.READY, "True", Reason.STABLE_AVAILABLE,
                         f"version {stable.version} (revision {stable.revision}) serves with "
                         f"{ready}/{self.replicas} ready replicas, back from one after the "
                         "rollback")  # fmt: skip
            else:
                self.put(conditions.READY, "False", Reason.STABLE_UNAVAILABLE,
                         f"stable revision {stable.revision} has {ready}/{self.replicas} "
                         "ready replicas")  # fmt: skip
        if candidate is not None:
            reason, message = self.progress
            # Only a first revision stalls with a candidate left: a later one rolls back.
            stalled = reason in conditions.STALLED
            self.put(conditions.PROGRESSING, "False" if stalled else "True", reason, message)
        elif self.rejected is not None and self.rejected == self.seen.revision:
            self.put(conditions.PROGRESSING, "False", Reason.REJECTED,
                     f"revision {self.rejected} was rolled back; change the spec or run "
                     "`pitstop retry` to try it again")  # fmt: skip
        else:
            reason, message = self.progress
            done = reason == Reason.ROLLOUT_IN_PROGRESS
            self.put(conditions.PROGRESSING, "False",
                     Reason.ROLLOUT_COMPLETE if done else reason,
                     "no rollout in progress" if done else message)  # fmt: skip
        if self.paused is not None:
            self.put(conditions.PAUSED, "True", self.paused_reason, self.paused)
        else:
            self.put(conditions.PAUSED, "False", Reason.NOT_PAUSED, "")
        still = conditions.find(self.conds, conditions.DEGRADED)
        if self.degraded is not None:
            self.put(conditions.DEGRADED, "True", self.degraded_reason, self.degraded)
        elif still is not None and still.status == "True" and self.rejected is not None:
            pass  # the failure stays visible until the spec moves on or a retry is asked
        else:
            self.put(conditions.DEGRADED, "False", Reason.AS_EXPECTED, "")

    def _growing(self, stable: RevisionStatus) -> bool:
        """The stable is a previous that waited at one pod, scaling back to full size
        after a rollback: serving, not degraded, within the progress deadline."""
        since = stable.waiting_since
        return since is not None and self.now < since + durations.parse(self.spec.progress_deadline)

    def _message(self, status: ModelDeploymentStatus) -> str:
        if status.decommissioned is not None:
            return conditions.text(status.conditions, conditions.READY)
        for type_ in (conditions.DEGRADED, conditions.PAUSED):
            if conditions.is_true(status.conditions, type_):
                return conditions.text(status.conditions, type_)
        if status.candidate is not None or status.phase == "RolledBack":
            return conditions.text(status.conditions, conditions.PROGRESSING)
        if status.stable is None:
            image = conditions.find(status.conditions, conditions.IMAGE_BUILT)
            if image is not None and image.status != "True":
                return image.message
        return conditions.text(status.conditions, conditions.READY)
