"""The stable watched between rollouts: when does retraining become advisable? Pure.

Each monitored metric (builtin drift or quality, each with a `max`) is judged in
*checks*: evidence accumulates from a check's start, judged by the analysis judge at
`spec.monitoring.confidence`, until the check is confident either way. A check that
finds the metric beyond its max begins a breach (or continues it); one that finds it
within ends it; the next check starts afresh, so every breach is confirmed again by
new evidence. An inconclusive check changes nothing. When a breach has lasted `for`, a
retraining *episode* begins — told once (condition, Event) and acted on once (the
retrain Job or webhook) — and lasts until every breach has ended, so a metric hovering
at its limit never starts a second retraining for the same episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pitstop.analysis import judge
from pitstop.analysis.judge import Look
from pitstop.api import durations
from pitstop.api.spec import AnalysisSpec, MonitoringSpec
from pitstop.api.status import AnalysisStatus, Breach, MonitoringStatus


@dataclass(frozen=True)
class Checked:
    status: MonitoringStatus
    began: Breach | None = None
    """The breach that began an episode in this pass (tell it, start the retraining)."""
    ended: bool = False
    """The episode in course ended in this pass (every breach is over)."""


def check(
    spec: MonitoringSpec,
    previous: MonitoringStatus | None,
    revision: str,
    now: datetime,
    look: Look | None,
) -> Checked:
    """The watch after one more look at `revision` (`look` None: nothing new)."""
    if previous is None or previous.revision != revision:
        previous = MonitoringStatus(revision=revision)  # a new stable: a new watch
    if look is None:
        return Checked(previous)
    analysis = AnalysisSpec(metrics=spec.metrics, confidence=spec.confidence)
    judged = judge.evaluate(
        analysis, AnalysisStatus(revision=revision, metrics=previous.metrics), revision, now,
        look=look,
    )  # fmt: skip
    breaches = {b.metric: b for b in previous.breaches}
    ongoing = []
    for result in judged.metrics:
        if result.verdict == "Fail":
            breaches.setdefault(result.name, Breach(metric=result.name, since=now,
                                                    value=result.value))  # fmt: skip
        elif result.verdict == "Pass":
            breaches.pop(result.name, None)
        else:
            ongoing.append(result)  # the check goes on; decided ones start again
    kept = [breaches[m.name] for m in spec.metrics if m.name in breaches]
    status = previous.model_copy(update={"last_check": now, "metrics": ongoing, "breaches": kept})
    if previous.episode is None:
        due = [b for b in kept if now - b.since >= durations.parse(spec.for_)]
        if due:
            first = min(due, key=lambda b: b.since)
            episode = f"{first.metric}@{first.since.isoformat()}"
            status = status.model_copy(update={"episode": episode, "retrain_job": None,
                                               "retrain_webhook": None})  # fmt: skip
            return Checked(status, began=first)
        return Checked(status)
    if not kept:
        return Checked(status.model_copy(update={"episode": None}), ended=True)
    return Checked(status)


def describe(spec: MonitoringSpec, status: MonitoringStatus, breach: Breach) -> str:
    """The recommendation, for a person: which metric, how far, since when."""
    limit = next((m.max for m in spec.metrics if m.name == breach.metric), None)
    value = f"{breach.value:.4g}" if breach.value is not None else "?"
    return (
        f"{breach.metric} {value} beyond max {limit:g} since {breach.since.isoformat()} "
        f"(longer than {spec.for_}): retraining recommended for revision {status.revision}"
    )
