"""Moves shared by every strategy: first deployment, start-up, failure, undo.

`advance` brings a new candidate up (state Starting) and then hands it to the module
of its current state: `bluegreen` (Preview), `shadow` (Shadow), `canary` (Canary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitstop.api.status import CandidateState
from pitstop.strategies import bluegreen, canary, shadow
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic

if TYPE_CHECKING:
    from pitstop.strategies.rollout import Rollout

FIRST_STATE: dict[str, CandidateState] = {
    "BlueGreen": "Preview",
    "Shadow": "Shadow",
    "Canary": "Canary",
}


def candidate_replicas(total: int, weight: int, by_replicas: bool) -> int:
    """Pods for the candidate. With exact weights it runs full size; with the `service`
    provider the share of pods *is* the weight: c / (total + c) ≈ weight / 100."""
    if not by_replicas or weight >= 100:
        return total
    if weight <= 0:
        return 0
    return max(1, round(total * weight / (100 - weight)))


def first(r: Rollout, target: str, image: str) -> None:
    """Nothing serves yet: bring the first revision up and make it stable once available."""
    from pitstop.api.status import RevisionStatus

    candidate = r.candidate
    if candidate is None:
        candidate = RevisionStatus(
            revision=target, version=r.spec.model.version, image=image,
            since=r.now, state="Starting", step_started_at=r.now,
        )  # fmt: skip
        r.note("Deploying", f"deploying revision {target} (version {candidate.version})")
    r.actions.append(EnsureRevision(target, r.replicas))
    r.split = SetTraffic(stable=target)
    state = r.seen.revisions.get(target)
    if state is not None and state.available:
        stable = candidate.model_copy(
            update={"since": r.now, "state": None, "step_started_at": None}
        )
        r.history.append(r.record(stable, "Promoted", "first revision", ended=False))
        r.stable, r.candidate = stable, None
        r.note(Reason.PROMOTED, f"revision {target} (version {stable.version}) serves")
    else:
        r.candidate = candidate
        ready = state.ready_replicas if state else 0
        r.progress = (Reason.WAITING_FOR_PODS, f"waiting for revision {target} "
                      f"(version {candidate.version}): {ready}/{r.replicas} ready replicas")  # fmt: skip


def advance(r: Rollout) -> None:
    candidate, stable = r.candidate, r.stable
    assert candidate is not None
    assert stable is not None
    if candidate.state in (None, "Starting"):
        kind = r.spec.strategy.type
        weight = canary.steps_of(r.spec)[0].weight if kind == "Canary" else 100
        wanted = candidate_replicas(r.replicas, weight, r.seen.traffic.weights_by_replicas)
        r.actions.append(EnsureRevision(candidate.revision, wanted))
        r.scale(stable.revision, r.replicas)
        r.split = SetTraffic(stable=stable.revision)
        if failed(r) or not available(r, wanted) or not smoke_passed(r):
            return
        candidate = candidate.model_copy(
            update={"state": FIRST_STATE[kind], "step": 0 if kind == "Canary" else None,
                    "step_started_at": r.now}
        )  # fmt: skip
        r.candidate = candidate
        r.actions.clear()  # the state's own step decides this pass's actions
        r.routed = False  # what the provider verified was the split before this state
    {"Preview": bluegreen.step, "Shadow": shadow.step, "Canary": canary.step}[
        candidate.state or "Canary"
    ](r)


def failed(r: Rollout) -> bool:
    """A failing verdict rolls the candidate back: traffic to stable, candidate rejected."""
    if r.seen.checks.verdict != "Fail":
        return False
    message = r.seen.checks.message or "health checks failed"
    r.degraded = f"revision {r.candidate.revision if r.candidate else '?'} rolled back: {message}"
    r.end_candidate("RolledBack", message, reject=True)
    r.actions.clear()
    r.hold()
    return True


def smoke_passed(r: Rollout) -> bool:
    """Before any traffic: a failed smoke test aborts, no user ever reached the candidate."""
    smoke, candidate = r.seen.smoke, r.candidate
    if smoke is None or smoke.verdict == "Pass":
        return True
    assert candidate is not None
    if smoke.verdict == "Fail":
        r.degraded = f"revision {candidate.revision} failed its smoke test: {smoke.message}"
        r.end_candidate("Aborted", f"smoke test failed: {smoke.message}", reject=True)
        r.actions.clear()
        r.hold()
    else:
        r.progress = (Reason.SMOKE_TEST, f"smoke-testing revision {candidate.revision}: "
                      f"{smoke.message}")  # fmt: skip
    return False


def available(r: Rollout, replicas: int) -> bool:
    """Whether the candidate runs `replicas` ready pods; says what it waits for if not."""
    candidate = r.candidate
    assert candidate is not None
    state = r.seen.revisions.get(candidate.revision)
    if state is not None and state.available and state.replicas == replicas:
        return True
    ready = state.ready_replicas if state else 0
    r.progress = (Reason.WAITING_FOR_PODS, f"waiting for revision {candidate.revision} "
                  f"(version {candidate.version}): {ready}/{replicas} ready replicas")  # fmt: skip
    return False


def restore(r: Rollout) -> None:
    """Undo: bring a retained revision back up, then switch all traffic to it."""
    candidate = r.candidate
    assert candidate is not None
    r.scale(candidate.revision, r.replicas)
    if r.stable is not None:
        r.scale(r.stable.revision, r.replicas)
        r.split = SetTraffic(stable=r.stable.revision)
    if not available(r, r.replicas):
        return
    if r.stable is not None:
        r.close(r.stable.revision, "Retired", f"undone to revision {candidate.revision}")
    stable = candidate.model_copy(update={"since": r.now, "state": None, "step_started_at": None})
    r.history.append(r.record(stable, "Promoted", "undo", ended=False))
    r.stable, r.candidate = stable, None
    r.split = SetTraffic(stable=stable.revision)
    r.note(Reason.RESTORED, f"revision {stable.revision} (version {stable.version}) serves again")
