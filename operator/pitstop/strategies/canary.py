"""Canary: weighted steps towards the candidate. A step advances as soon as the analysis
passes (after the step's minPause), and at the end of its pause with the analysis still
inconclusive does what analysis.onInconclusive says; a step without a pause waits for
`pitstop promote`. After the last step the candidate becomes stable (with spec.approval
Required, once `pitstop promote` approves it)."""

from __future__ import annotations

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import CanaryStep, ModelDeploymentSpec
from pitstop.strategies import engine, progress, shares
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic
from pitstop.strategies.working import Rollout

# Used when `strategy.canary` is omitted.
DEFAULT_STEPS = (CanaryStep(weight=20, pause="30s"), CanaryStep(weight=50, pause="30s"))


def steps_of(spec: ModelDeploymentSpec) -> tuple[CanaryStep, ...]:
    settings = spec.strategy.canary
    return tuple(settings.steps) if settings is not None else DEFAULT_STEPS


# With the `service` provider, a candidate that passed a last step below 50% runs fewer
# pods than the stable: before it takes all traffic it grows to full size in a step of
# its own, numbered len(steps), where it has as many pods as the stable (half the traffic).
GROWING_WEIGHT = 50


def _index(steps: tuple[CanaryStep, ...], step: int | None, by_replicas: bool) -> int:
    """The current step; len(steps) is the growing step (only ever with `service`)."""
    return min(step or 0, len(steps) if by_replicas else len(steps) - 1)


def _weight(steps: tuple[CanaryStep, ...], index: int) -> int:
    return steps[index].weight if index < len(steps) else GROWING_WEIGHT


def split(md: ModelDeployment) -> SetTraffic:
    """The current step's weight: what the provider must show before the step counts."""
    assert md.status.stable is not None
    assert md.status.candidate is not None
    steps = steps_of(md.spec)
    index = _index(steps, md.status.candidate.step, by_replicas=True)
    return SetTraffic(
        md.status.stable.revision, md.status.candidate.revision, _weight(steps, index)
    )


def step(r: Rollout) -> None:
    candidate, stable = r.candidate, r.stable
    assert candidate is not None
    assert stable is not None
    steps = steps_of(r.spec)
    by_replicas = r.seen.traffic.weights_by_replicas
    index = _index(steps, candidate.step, by_replicas)
    if (candidate.step or 0) > index:  # the spec lost steps: go on from the last one
        candidate = r.candidate = candidate.model_copy(update={"step": index})
    growing = index == len(steps)
    weight = _weight(steps, index)
    wanted = r.replicas if growing else shares.candidate_replicas(r.replicas, weight, by_replicas)
    r.actions.append(EnsureRevision(candidate.revision, wanted))
    r.scale(stable.revision, r.replicas)
    r.split = SetTraffic(stable=stable.revision, candidate=candidate.revision, weight=weight)
    if not progress.has_ready_pod(r):
        # A weight on a candidate without a ready pod answers users with 503s: all
        # traffic stays on the stable until its pods are ready (again).
        r.split = SetTraffic(stable=stable.revision)
    if progress.failed(r) or not progress.available(r, wanted):
        return
    candidate = r.current()
    if r.seen.traffic.weights_by_replicas and _strays(r):
        # The entry Service selects every pod of the ModelDeployment during a canary: a
        # retired revision's pods still going would answer users beside the canary.
        r.split = SetTraffic(stable=stable.revision)
        r.progress = (Reason.WAITING_FOR_PODS, f"waiting for the pods of revision(s) "
                      f"{', '.join(_strays(r))} to go before any traffic moves")  # fmt: skip
        return
    if growing:
        r.actions.clear()
        r.promote("0s")
        return
    current = steps[index]
    label = (f"step {index + 1}/{len(steps)}: {r.effective_weight(current.weight)}% of traffic "
             f"to revision {candidate.revision} (version {candidate.version})")  # fmt: skip
    if not r.routed:
        progress.waiting_for_route(r, label, "route")
        return
    if current.pause is None:
        if not r.promote_requested:
            r.paused = f"{label}; run `pitstop promote {r.md.metadata.name}` to continue"
            r.progress = (Reason.AWAITING_PROMOTION, r.paused)
            return
    else:
        started = candidate.step_started_at or r.now
        if progress.gate(r, label, started, current.min_pause, current.pause) != "advance":
            return
    if index + 1 == len(steps) and not progress.approved(r, f"{label}: passed"):
        return  # approval comes before the candidate takes all traffic (or grows to it)
    if index + 1 < len(steps):
        nxt = steps[index + 1]
        r.candidate = candidate.model_copy(update={"step": index + 1, "step_started_at": r.now})
        r.note(Reason.STEP_ADVANCED, f"step {index + 2}/{len(steps)}: {nxt.weight}% to "
               f"revision {candidate.revision}")  # fmt: skip
        r.progress = (Reason.STEP_ADVANCED, f"moving to step {index + 2}/{len(steps)}")
        r.wake.append(0.0)  # the next pass applies the new step's weight
    elif wanted < r.replicas:
        r.candidate = candidate.model_copy(update={"step": len(steps), "step_started_at": r.now})
        r.note(Reason.STEP_ADVANCED, f"revision {candidate.revision} passed its last step; "
               f"growing to {r.replicas} pods before it takes all traffic")  # fmt: skip
        r.progress = (Reason.STEP_ADVANCED, f"growing revision {candidate.revision} to "
                      f"{r.replicas} pods")  # fmt: skip
        r.wake.append(0.0)  # the next pass scales it up
    else:
        r.actions.clear()
        r.promote("0s")


def _strays(r: Rollout) -> list[str]:
    """Revisions other than stable and candidate that still have ready pods."""
    own = {r.stable.revision if r.stable else None, r.candidate.revision if r.candidate else None}
    return sorted(rev for rev, state in r.seen.revisions.items()
                  if rev not in own and state.ready_replicas > 0)  # fmt: skip


STRATEGY = engine.register(
    engine.Strategy(
        kind="Canary",
        state="Canary",
        step=step,
        split=split,
        first_weight=lambda spec: steps_of(spec)[0].weight,
        stepped=True,
    )
)
