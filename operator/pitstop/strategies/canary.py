"""Canary: weighted steps towards the candidate. A step advances after its pause and a
passing verdict (an inconclusive one holds it); a step without a pause waits for
`pitstop promote`. After the last step the candidate becomes stable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitstop.api import durations
from pitstop.api.spec import CanaryStep, ModelDeploymentSpec
from pitstop.strategies import progress
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic

if TYPE_CHECKING:
    from pitstop.strategies.rollout import Rollout

# Used when `strategy.canary` is omitted.
DEFAULT_STEPS = (CanaryStep(weight=20, pause="30s"), CanaryStep(weight=50, pause="30s"))


def steps_of(spec: ModelDeploymentSpec) -> tuple[CanaryStep, ...]:
    settings = spec.strategy.canary
    return tuple(settings.steps) if settings is not None else DEFAULT_STEPS


def step(r: Rollout) -> None:
    candidate, stable = r.candidate, r.stable
    assert candidate is not None
    assert stable is not None
    steps = steps_of(r.spec)
    index = min(candidate.step or 0, len(steps) - 1)
    current = steps[index]
    wanted = progress.candidate_replicas(
        r.replicas, current.weight, r.seen.traffic.weights_by_replicas
    )
    r.actions.append(EnsureRevision(candidate.revision, wanted))
    r.scale(stable.revision, r.replicas)
    r.split = SetTraffic(
        stable=stable.revision, candidate=candidate.revision, weight=current.weight
    )
    if progress.failed(r) or not progress.available(r, wanted):
        return
    label = (f"step {index + 1}/{len(steps)}: {r.effective_weight(current.weight)}% of traffic "
             f"to revision {candidate.revision} (version {candidate.version})")  # fmt: skip
    if not r.routed:
        r.progress = (Reason.WAITING_FOR_TRAFFIC, f"{label}; waiting for the route: "
                      f"{r.seen.traffic.message}")  # fmt: skip
        return
    if current.pause is None:
        if not r.promote_requested:
            r.paused = f"{label}; run `pitstop promote {r.md.metadata.name}` to continue"
            r.progress = (Reason.AWAITING_PROMOTION, r.paused)
            return
    else:
        started = candidate.step_started_at or r.now
        left = (started + durations.parse(current.pause) - r.now).total_seconds()
        if left > 0:
            r.progress = (Reason.ROLLOUT_IN_PROGRESS, f"{label}; {left:.0f}s left in this step")
            r.wake.append(left)
            return
        if r.seen.checks.verdict == "Inconclusive":
            r.progress = (Reason.ROLLOUT_IN_PROGRESS, f"{label}; holding: analysis "
                          f"inconclusive ({r.seen.checks.message})")  # fmt: skip
            return
    if index + 1 < len(steps):
        nxt = steps[index + 1]
        r.candidate = candidate.model_copy(update={"step": index + 1, "step_started_at": r.now})
        r.note(Reason.STEP_ADVANCED, f"step {index + 2}/{len(steps)}: {nxt.weight}% to "
               f"revision {candidate.revision}")  # fmt: skip
        r.progress = (Reason.STEP_ADVANCED, f"moving to step {index + 2}/{len(steps)}")
        r.wake.append(0.0)  # the next pass applies the new step's weight
    else:
        r.actions.clear()
        r.promote("0s")
