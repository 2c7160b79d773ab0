"""Moves the strategies share: first deployment, start-up checks, failure, undo, and
the evidence gate that ends a canary step or a shadow phase."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pitstop.api import durations
from pitstop.api.status import RevisionStatus
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic
from pitstop.strategies.working import POLL_SECONDS, Rollout

Gate = Literal["advance", "wait", "ended"]


def first(r: Rollout, target: str, image: str) -> None:
    """Nothing serves yet: bring the first revision up and make it stable once available.

    Past the progress deadline it has nothing to fall back to, and taking it down would
    serve nobody better: it reports Progressing=False with the cause (phase Failed) and
    keeps its Deployment, which goes on retrying, so a pushed image or freed capacity
    still brings it up without a new commit."""
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
            update={"since": r.now, "state": None, "step_started_at": None, "waiting_since": None}
        )
        r.history.append(r.record(stable, "Promoted", "first revision", ended=False))
        r.stable, r.candidate = stable, None
        # No Promoted Event: nothing was promoted over anything, and the phase's own
        # Event (Healthy, "revision ... serves") says it in the same pass.
        return
    r.candidate = candidate
    stalled = _waiting(r, r.replicas)
    if stalled is not None:
        r.progress = (stalled[0], f"revision {target} (version {candidate.version}): "
                      f"{stalled[1]}; nothing to fall back to: its pods keep being retried")  # fmt: skip


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
    """Before any traffic: a failed smoke, load or stress test aborts the candidate, and
    no user ever reached it (the message says which test)."""
    smoke, candidate = r.seen.smoke, r.candidate
    if smoke is None or smoke.verdict == "Pass":
        return True
    assert candidate is not None
    if smoke.verdict == "Fail":
        r.degraded = f"revision {candidate.revision} failed before any traffic: {smoke.message}"
        r.end_candidate("Aborted", f"failed before any traffic: {smoke.message}", reject=True)
        r.actions.clear()
        r.hold()
    else:
        r.progress = (Reason.SMOKE_TEST, f"testing revision {candidate.revision} before "
                      f"traffic: {smoke.message}")  # fmt: skip
    return False


def has_ready_pod(r: Rollout) -> bool:
    """Whether the candidate has a pod that could answer a request now."""
    state = r.seen.revisions.get(r.current().revision)
    return state is not None and state.ready_replicas > 0


def available(r: Rollout, replicas: int) -> bool:
    """Whether the candidate runs `replicas` ready pods. If not, says what it waits for
    and why its pods are not ready, and rolls it back once it has waited longer than
    spec.progressDeadline (an undo's target just goes on waiting: the stable serves)."""
    candidate = r.current()
    state = r.seen.revisions.get(candidate.revision)
    if state is not None and state.available and state.replicas == replicas:
        if candidate.waiting_since is not None:
            r.candidate = candidate.model_copy(update={"waiting_since": None})
        return True
    stalled = _waiting(r, replicas)
    if stalled is None or r.stable is None or candidate.state == "Restoring":
        return False
    reason, why = stalled
    r.degraded, r.degraded_reason = f"revision {candidate.revision} rolled back: {why}", reason
    r.end_candidate("RolledBack", why, reject=True)
    r.actions.clear()
    r.hold()
    return False


def _waiting(r: Rollout, replicas: int) -> tuple[str, str] | None:
    """The candidate lacks ready pods: start its deadline's clock if not yet running,
    say what it waits for; past the deadline, (reason, why) names the cause."""
    candidate = r.current()
    since = candidate.waiting_since or r.now
    if candidate.waiting_since is None:
        r.candidate = candidate.model_copy(update={"waiting_since": since})
    state = r.seen.revisions.get(candidate.revision)
    ready = f"{state.ready_replicas if state else 0}/{replicas} ready replicas"
    trouble = state.trouble if state else None
    why = f" ({trouble.message})" if trouble else ""
    deadline = since + durations.parse(r.spec.progress_deadline)
    r.progress = (Reason.WAITING_FOR_PODS, f"waiting for revision {candidate.revision} (version "
                  f"{candidate.version}): {ready}{why}; progress deadline "
                  f"{deadline.isoformat(timespec='seconds')}")  # fmt: skip
    if r.now < deadline:
        # Pod events usually come first; the poll stays the safety net.
        r.wake.append(min((deadline - r.now).total_seconds(), POLL_SECONDS))
        return None
    reason = trouble.reason if trouble else Reason.PROGRESS_DEADLINE_EXCEEDED
    return reason, f"{ready} after progressDeadline {r.spec.progress_deadline}{why}"


def waiting_for_route(r: Rollout, label: str, what: str) -> None:
    message = r.seen.traffic.message
    r.progress = (Reason.WAITING_FOR_TRAFFIC,
                  f"{label}; waiting for the {what}" + (f": {message}" if message else
                  " to show it"))  # fmt: skip


def gate(r: Rollout, label: str, started: datetime, least: str | None, most: str) -> Gate:
    """Whether the current step (or shadow phase) may end now.

    With analysis metrics it ends as soon as every metric passes once `least` has gone
    by; a failure never reaches here (it rolls back first). When `most` runs out with a
    metric still inconclusive, `analysis.onInconclusive` decides: Hold (stay, saying
    what lacks evidence), Rollback, or Promote. Without metrics it lasts `most`.
    """
    elapsed = r.now - started
    shortest = durations.parse(least) if least else timedelta(0)
    longest = durations.parse(most)
    verdict = r.seen.checks.verdict
    if r.promote_requested:
        return "advance"
    if verdict is None:  # no analysis: a fixed pause
        return (
            "advance" if elapsed >= longest else _wait(r, f"{label}; {{}}s left", longest - elapsed)
        )
    if elapsed < shortest:
        return _wait(r, f"{label}; at least {{}}s left", shortest - elapsed)
    if verdict == "Pass":
        return "advance"
    if elapsed < longest:
        left = longest - elapsed
        r.progress = (Reason.ROLLOUT_IN_PROGRESS, f"{label}; gathering evidence "
                      f"({left.total_seconds():.0f}s at most): {r.seen.checks.message}")  # fmt: skip
        r.wake.append(left.total_seconds())
        return "wait"
    action = r.spec.analysis.on_inconclusive
    why = f"no verdict after {most}: {r.seen.checks.message}"
    if action == "Promote":
        r.note(Reason.INCONCLUSIVE_PROMOTED, f"{label}: {why}; continuing (onInconclusive: "
               "Promote)")  # fmt: skip
        return "advance"
    if action == "Rollback":
        candidate = r.candidate
        assert candidate is not None
        r.degraded = f"revision {candidate.revision} rolled back: {why} (onInconclusive: Rollback)"
        r.end_candidate("RolledBack", why, reject=True)
        r.actions.clear()
        r.hold()
        return "ended"
    r.progress = (Reason.INSUFFICIENT_EVIDENCE, f"{label}; held (onInconclusive: Hold): {why}")
    return "wait"


def approved(r: Rollout, label: str) -> bool:
    """Whether a candidate whose checks passed may take all traffic now: at once, unless
    spec.approval is Required; then only on `pitstop promote`, and until then it waits
    (phase Paused), saying so. Its analysis goes on: a failure still rolls it back."""
    if r.spec.approval == "Automatic" or r.promote_requested:
        return True
    r.paused = f"{label}; waiting for approval: `pitstop promote {r.md.metadata.name}`"
    r.paused_reason = Reason.AWAITING_APPROVAL
    r.progress = (Reason.AWAITING_APPROVAL, r.paused)
    return False


def _wait(r: Rollout, text: str, left: timedelta) -> Gate:
    r.progress = (Reason.ROLLOUT_IN_PROGRESS, text.format(f"{left.total_seconds():.0f}"))
    r.wake.append(left.total_seconds())
    return "wait"


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
    stable = r.current().model_copy(
        update={"since": r.now, "state": None, "step_started_at": None, "waiting_since": None}
    )
    r.history.append(r.record(stable, "Promoted", "undo", ended=False))
    r.stable, r.candidate = stable, None
    r.split = SetTraffic(stable=stable.revision)
    r.note(Reason.RESTORED, f"revision {stable.revision} (version {stable.version}) serves again")
