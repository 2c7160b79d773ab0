"""What one reconcile tells the operator's metrics (`telemetry`).

From the status before and after a pass and the Events it posted: where the
ModelDeployment stands, rollouts started and ended (and the metric a rollback was
decided on), what the judge sees now, and how long a candidate kept serving once its
evidence first put a metric past the limit. The first-breach times are in memory: an
operator restarted in between reports no duration for that rollback (it cannot know).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from pitstop import telemetry
from pitstop.analysis import judge
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import MetricSpec
from pitstop.api.status import HistoryEntry, ModelDeploymentStatus
from pitstop.strategies import history
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import Event

_lock = threading.Lock()
_first_breach: dict[tuple[str, str, str], float] = {}  # (ns, name, revision): monotonic


def reconciled(
    md: ModelDeployment,
    before: ModelDeploymentStatus,
    after: ModelDeploymentStatus,
    events: Sequence[Event],
    analysing: bool,
    looked_at: float,
) -> None:
    """Record one committed pass whose actions are done (traffic already routed);
    `looked_at` is when it read its evidence (time.monotonic)."""
    ns, name = md.metadata.namespace, md.metadata.name
    strategy = md.spec.strategy.type
    if any(e.reason == Reason.ROLLOUT_STARTED for e in events):
        telemetry.rollout_started(strategy)
    analysis = after.analysis
    if analysing and analysis is not None and analysis.revision is not None:
        specs = {m.name: m for m in md.spec.analysis.metrics}
        if any(m.name in specs and judge.past_limit(specs[m.name], m) for m in analysis.metrics):
            with _lock:
                _first_breach.setdefault((ns, name, analysis.revision), looked_at)
    for entry in history.ended(before.history, after.history):
        assert entry.outcome is not None
        telemetry.rollout_ended(strategy, entry.outcome, decided_on(after, entry))
        with _lock:
            first = _first_breach.pop((ns, name, entry.revision), None)
        if entry.outcome == "RolledBack" and first is not None:
            telemetry.ROLLBACK_SECONDS.observe(time.monotonic() - first)
    traffic = after.traffic
    telemetry.FLEET.saw(ns, name, telemetry.Seen(
        after.phase,
        {"stable": traffic.stable, "candidate": traffic.candidate, "mirrored": traffic.mirrored},
        tuple(_judged(md, after)) if analysing else (),
    ))  # fmt: skip


def invalid(namespace: str, name: str, status: ModelDeploymentStatus) -> None:
    """A ModelDeployment the API models refuse: counted by its phase, nothing judged."""
    telemetry.FLEET.saw(namespace, name, telemetry.Seen(status.phase))


def forget(namespace: str, name: str) -> None:
    """The ModelDeployment is gone: drop its series and memory."""
    telemetry.FLEET.forget(namespace, name)
    with _lock:
        for key in [k for k in _first_breach if k[:2] == (namespace, name)]:
            del _first_breach[key]


def decided_on(status: ModelDeploymentStatus, entry: HistoryEntry) -> str:
    """What a rollback was decided on: the failing analysis metric, the smoke test, or
    nothing named (a progress deadline, a person)."""
    if entry.outcome != "RolledBack":
        return ""
    analysis = status.analysis
    if analysis is None or analysis.revision != entry.revision:
        return ""
    failed = [m.name for m in analysis.metrics if m.verdict == "Fail"]
    if failed:
        return failed[0]
    if analysis.smoke is not None and not analysis.smoke.passed:
        return "smokeTest"
    return ""


def _judged(md: ModelDeployment, status: ModelDeploymentStatus) -> list[telemetry.Judged]:
    analysis = status.analysis
    if analysis is None:
        return []
    specs = {m.name: m for m in md.spec.analysis.metrics}
    found = []
    for m in analysis.metrics:
        spec = specs.get(m.name)
        kind, limit = _limit(spec) if spec is not None else ("", None)
        found.append(telemetry.Judged(
            metric=m.name, verdict=m.verdict, candidate=m.value, stable=m.stable_value,
            lower=m.lower, upper=m.upper, limit=limit, limit_kind=kind,
        ))  # fmt: skip
    return found


def _limit(spec: MetricSpec) -> tuple[str, float | None]:
    for kind, value in (
        ("max", spec.max), ("min", spec.min), ("maxAboveStable", spec.max_above_stable),
        ("maxRatioToStable", spec.max_ratio_to_stable),
    ):  # fmt: skip
        if value is not None:
            return kind, value
    return "", None
