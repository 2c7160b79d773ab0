"""Shadow: the candidate receives a mirrored share of requests and never answers users;
its answers are compared with production's. The phase ends as soon as the analysis
passes (after minDuration), and at the end of `duration` with it still inconclusive
does what analysis.onInconclusive says. Then the candidate is promoted (by a blue/green
switch or canary steps, as configured) or held for `pitstop promote`. With spec.approval
Required, a switch waits for `pitstop promote`; canary steps wait at their last step."""

from __future__ import annotations

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import BlueGreenSpec, ShadowSpec
from pitstop.strategies import engine, progress
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic
from pitstop.strategies.working import Rollout


def split(md: ModelDeployment) -> SetTraffic:
    """The mirror: what the provider must show before mirrored evidence counts."""
    assert md.status.stable is not None
    assert md.status.candidate is not None
    percent = (md.spec.strategy.shadow or ShadowSpec()).percent
    return SetTraffic(md.status.stable.revision, md.status.candidate.revision, mirror=percent)


def step(r: Rollout) -> None:
    candidate, stable = r.candidate, r.stable
    assert candidate is not None
    assert stable is not None
    settings = r.spec.strategy.shadow or ShadowSpec()
    r.actions.append(EnsureRevision(candidate.revision, r.replicas))
    r.scale(stable.revision, r.replicas)
    r.split = SetTraffic(
        stable=stable.revision, candidate=candidate.revision, mirror=settings.percent
    )
    if progress.failed(r) or not progress.available(r, r.replicas):
        return
    candidate = r.current()
    label = f"mirroring {settings.percent}% of requests to revision {candidate.revision}"
    if not r.routed:
        progress.waiting_for_route(r, label, "mirror")
        return
    started = candidate.step_started_at or r.now
    if progress.gate(r, label, started, settings.min_duration, settings.duration) != "advance":
        return
    if settings.promote == "Auto" or r.promote_requested:
        if settings.promote_with == "BlueGreen":
            if not progress.approved(r, f"shadow of revision {candidate.revision} passed"):
                return
            r.actions.clear()
            r.promote((r.spec.strategy.blue_green or BlueGreenSpec()).scale_down_delay)
        else:
            r.candidate = candidate.model_copy(
                update={"state": "Canary", "step": 0, "step_started_at": r.now}
            )
            r.note(Reason.STEP_ADVANCED, f"shadow of revision {candidate.revision} complete; "
                   "continuing with canary steps")  # fmt: skip
            r.progress = (Reason.STEP_ADVANCED, "shadow complete; starting canary steps")
            r.wake.append(0.0)
    else:
        r.paused = (f"shadow of revision {candidate.revision} complete; run `pitstop promote "
                    f"{r.md.metadata.name}` to promote it")  # fmt: skip
        r.progress = (Reason.AWAITING_PROMOTION, r.paused)


STRATEGY = engine.register(
    engine.Strategy(
        kind="Shadow",
        state="Shadow",
        step=step,
        split=split,
        first_weight=lambda spec: 100,
        stepped=False,
    )
)
