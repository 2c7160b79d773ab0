"""Shadow: the candidate receives a mirrored share of requests for `duration` and never
answers users; its answers are compared with production's. Then it is promoted (by a
blue/green switch or canary steps, as configured) or held for `pitstop promote`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitstop.api import durations
from pitstop.api.spec import BlueGreenSpec, ShadowSpec
from pitstop.strategies import progress
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic

if TYPE_CHECKING:
    from pitstop.strategies.rollout import Rollout


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
    label = f"mirroring {settings.percent}% of requests to revision {candidate.revision}"
    started = candidate.step_started_at or r.now
    left = (started + durations.parse(settings.duration) - r.now).total_seconds()
    if left > 0:
        r.progress = (Reason.SHADOW_STARTED, f"{label}; {left:.0f}s left")
        r.wake.append(left)
    elif not r.routed:
        r.progress = (Reason.WAITING_FOR_TRAFFIC, f"{label}; waiting for the mirror: "
                      f"{r.seen.traffic.message}")  # fmt: skip
    elif r.seen.checks.verdict == "Inconclusive":
        r.progress = (Reason.ROLLOUT_IN_PROGRESS, f"{label}; holding: analysis inconclusive "
                      f"({r.seen.checks.message})")  # fmt: skip
    elif settings.promote == "Auto" or r.promote_requested:
        if settings.promote_with == "BlueGreen":
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
