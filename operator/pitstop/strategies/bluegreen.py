"""BlueGreen: the candidate runs full size behind its own Service (the preview) and takes
all traffic at once when its checks pass — by itself (`autoPromote`) or on `pitstop
promote`; with spec.approval Required, only on `pitstop promote`. The old stable stays up
for `scaleDownDelay`, so going back is instant."""

from __future__ import annotations

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import BlueGreenSpec
from pitstop.rendering import labels
from pitstop.strategies import engine, progress
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import EnsureRevision, SetTraffic
from pitstop.strategies.working import Rollout


def split(md: ModelDeployment) -> SetTraffic:
    """A preview takes no user traffic."""
    assert md.status.stable is not None
    return SetTraffic(stable=md.status.stable.revision)


def step(r: Rollout) -> None:
    candidate, stable = r.candidate, r.stable
    assert candidate is not None
    assert stable is not None
    settings = r.spec.strategy.blue_green or BlueGreenSpec()
    r.actions.append(EnsureRevision(candidate.revision, r.replicas))
    r.scale(stable.revision, r.replicas)
    r.split = SetTraffic(stable=stable.revision)
    if progress.failed(r) or not progress.available(r, r.replicas):
        return
    preview = labels.revision_name(r.md.metadata.name, candidate.revision)
    if r.seen.checks.verdict == "Inconclusive":
        r.progress = (Reason.PREVIEW, f"revision {candidate.revision} in preview (Service "
                      f"{preview}); waiting for a verdict: {r.seen.checks.message}")  # fmt: skip
    elif not progress.approved(
        r,
        f"revision {candidate.revision} (version "
        f"{candidate.version}) passed in preview behind Service {preview}",
    ):
        pass  # spec.approval: Required, and no `pitstop promote` yet: it says so
    elif settings.auto_promote or r.promote_requested:
        r.promote(settings.scale_down_delay)
    else:
        r.paused = (f"revision {candidate.revision} (version {candidate.version}) is ready in "
                    f"preview behind Service {preview}; run `pitstop promote "
                    f"{r.md.metadata.name}` to switch traffic")  # fmt: skip
        r.progress = (Reason.AWAITING_PROMOTION, r.paused)


STRATEGY = engine.register(
    engine.Strategy(
        kind="BlueGreen",
        state="Preview",
        step=step,
        split=split,
        first_weight=lambda spec: 100,
        stepped=False,
    )
)
