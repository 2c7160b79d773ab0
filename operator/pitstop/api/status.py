"""The observed state of a ModelDeployment: the only thing the operator writes.

All rollout state lives here, so an operator restarted at any moment resumes exactly
where it stopped. Models are frozen values; the core builds a new status, it never
mutates one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from pitstop.api.base import StatusModel

Phase = Literal[
    "Pending",
    "Building",
    "Deploying",
    "Progressing",
    "Paused",
    "Healthy",
    "Degraded",
    "RolledBack",
    "Failed",
    "Decommissioned",
]
ConditionStatus = Literal["True", "False", "Unknown"]
Outcome = Literal["Promoted", "RolledBack", "Aborted", "Superseded", "Retired"]
# Where a candidate stands in its rollout.
CandidateState = Literal["Starting", "Preview", "Shadow", "Canary", "Restoring"]


class Condition(StatusModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(
        description="Ready, Progressing, Degraded, Paused, ImageBuilt, Reconciled (False, "
        "reason ReconcileError: the last reconcile failed, and why), or Reconciling and "
        "Stalled (kstatus, as Flux reads them: True while the phase is on its way, or stuck "
        "until someone acts; the reason is the phase)."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason a program can match on.")
    message: str = Field(default="", description="What happened, for a person.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation this condition was computed for."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed."
    )


class ManualRequest(StatusModel):
    """A manual request (`pitstop promote|abort|retry|undo|decommission`) as the operator
    handled it."""

    action: Literal["promote", "abort", "retry", "undo", "decommission"] = Field(
        description="What was asked."
    )
    id: str = Field(description="The request's id (pitstop.dev/request).")
    by: str = Field(
        description="Who asked: the pitstop.dev/requested-by annotation, which the chart's "
        "admission policy holds to the user the API server authenticated."
    )
    at: datetime | None = Field(default=None, description="When the operator handled it.")
    reason: str = Field(default="", description="Why, as given with --reason.")
    result: Literal["Done", "Refused"] = Field(description="Done, or Refused (see message).")
    message: str = Field(default="", description="Why it was refused.")


class RevisionStatus(StatusModel):
    """One revision: the model version and image its pods run."""

    revision: str = Field(description="Hash of everything that defines the pods.")
    version: str = Field(description="Model version.")
    image: str = Field(description="Serving image.")
    since: datetime | None = Field(default=None, description="When it took this role.")
    state: CandidateState | None = Field(
        default=None, description="Candidate only: Starting, Preview, Shadow, Canary or Restoring."
    )
    step: int | None = Field(default=None, description="Candidate only: current canary step.")
    step_started_at: datetime | None = Field(
        default=None, description="Candidate only: when the current state or step began."
    )
    waiting_since: datetime | None = Field(
        default=None,
        description="Candidate: since when it lacks the ready pods it needs; "
        "spec.progressDeadline counts from then. Stable: since a rollback to a previous "
        "stable waiting at one pod, until it is back at full size (it serves meanwhile).",
    )
    until: datetime | None = Field(
        default=None, description="Previous stable only: kept up for rollback until then."
    )
    full_until: datetime | None = Field(
        default=None,
        description="Previous stable only: kept at full size until then (the scale-down "
        "delay), then at one replica until `until` (the post-promotion window), scaled "
        "back up if a failure in the window goes back to it. None: full size until `until`.",
    )
    requests: list[ManualRequest] | None = Field(
        default=None,
        description="Candidate only: manual requests about it, moved to its history entry "
        "when its rollout ends.",
    )


class TrafficStatus(StatusModel):
    """Where user traffic goes now."""

    stable: int = Field(default=0, description="Percent answered by the stable revision.")
    candidate: int = Field(default=0, description="Percent answered by the candidate.")
    mirrored: int = Field(default=0, description="Percent copied to the candidate (shadow).")
    summary: str = Field(default="", description="The split at a glance, for printer columns.")


class Tally(StatusModel):
    """What one revision served over the analysed intervals, summed."""

    requests: float = Field(default=0.0, description="Requests (rows for drift).")
    bad: float = Field(
        default=0.0,
        description="Of those, bad ones: errors, disagreements; for a latency limit "
        "relative to the stable, answers in the tail test's tail.",
    )
    buckets: dict[str, float] | None = Field(
        default=None, description="Latency: answers per bucket, by upper bound in seconds."
    )
    bins: dict[str, list[float]] | None = Field(
        default=None, description="Drift: rows per profile bin, by feature."
    )
    total: float | None = Field(
        default=None, description="Regression quality: the sum of absolute errors."
    )
    squares: float | None = Field(
        default=None, description="Regression quality: the sum of squared errors."
    )


class MetricEvidence(StatusModel):
    """The evidence a sequentially judged metric has gathered (the judge's memory)."""

    candidate: Tally = Field(default_factory=Tally, description="The candidate's tally.")
    stable: Tally | None = Field(default=None, description="The stable's, same intervals.")
    above: list[float] = Field(
        default_factory=list,
        description="Relative limits: log evidence that the candidate exceeds each "
        "threshold of the judge's grid.",
    )
    below: list[float] = Field(
        default_factory=list, description="Relative limits: log evidence that it stays below."
    )
    expected: dict[str, list[float]] | None = Field(
        default=None, description="Drift: the training shares of each feature's bins."
    )
    test: str | None = Field(
        default=None, description="The relative limit `above` and `below` are kept for."
    )


class MetricResult(StatusModel):
    """Where one analysis metric stands."""

    name: str = Field(description="The metric's name in spec.analysis.metrics.")
    value: float | None = Field(default=None, description="The candidate's estimate.")
    stable_value: float | None = Field(
        default=None, description="The stable's estimate over the same intervals."
    )
    lower: float | None = Field(
        default=None,
        description="Lower end of the interval the judged quantity lies in, at the "
        "analysis' confidence (the difference or ratio to the stable for relative limits).",
    )
    upper: float | None = Field(default=None, description="Upper end of that interval.")
    limit: str = Field(default="", description="The limit it is held against.")
    verdict: Literal["Pass", "Fail", "Inconclusive"] = Field(
        default="Inconclusive",
        description="Pass (confident within the limit), Fail (confident it is broken) or "
        "Inconclusive (not enough evidence either way).",
    )
    requests: float | None = Field(
        default=None, description="Candidate requests (rows, compared predictions) judged."
    )
    needs: int | None = Field(
        default=None,
        description="About how many more candidate requests a verdict needs, were the "
        "estimate to stay where it is.",
    )
    evidence: MetricEvidence | None = Field(
        default=None, description="The judge's accumulated evidence (sequential metrics)."
    )


class SmokeResult(StatusModel):
    """The smoke test of one candidate revision."""

    revision: str = Field(description="The revision tested.")
    passed: bool = Field(description="Every answer was valid.")
    message: str = Field(default="", description="What failed, or how many passed.")


class LoadResult(StatusModel):
    """The load test of one candidate revision, as it ended."""

    revision: str = Field(description="The revision tested.")
    passed: bool = Field(description="Every limit held.")
    message: str = Field(default="", description="What was measured, against what.")
    p99: float | None = Field(default=None, description="p99 latency of the answers, seconds.")
    error_rate: float | None = Field(default=None, description="Share of answers that failed.")
    rate: float | None = Field(default=None, description="Requests per second achieved.")


class StressResult(StatusModel):
    """The stress test of one candidate revision: its capacity per pod."""

    revision: str = Field(description="The revision tested.")
    passed: bool = Field(description="Its capacity carries the stable's traffic (or none asked).")
    message: str = Field(default="", description="How the ramp ended, for a person.")
    capacity: float | None = Field(
        default=None, description="Requests per second one pod sustained within the limits."
    )
    p99: float | None = Field(default=None, description="p99 at that rate, seconds.")
    stable_rate: float | None = Field(
        default=None, description="The stable's traffic when tested, requests per second."
    )


class AnalysisStatus(StatusModel):
    """The analysis of the current candidate (or of a just-promoted stable)."""

    revision: str | None = Field(default=None, description="The revision being analysed.")
    last_check: datetime | None = Field(
        default=None, description="When new evidence was last judged."
    )
    failures: int = Field(
        default=0, description="Failed measurements of value metrics (PromQL query, webhook)."
    )
    verdict: Literal["Pass", "Fail", "Inconclusive"] | None = Field(
        default=None, description="The verdict of the last measurement, counting failures."
    )
    message: str = Field(default="", description="Why, for a person.")
    metrics: list[MetricResult] = Field(default_factory=list, description="Per metric.")
    smoke: SmokeResult | None = Field(default=None, description="The smoke test's result.")
    load_test: LoadResult | None = Field(default=None, description="The load test's result.")
    stress: StressResult | None = Field(default=None, description="The stress test's result.")
    last_value_check: datetime | None = Field(
        default=None, description="When value metrics (PromQL query, webhook) were measured."
    )
    generated: int | None = Field(
        default=None, description="Requests Pitstop generated (analysis.load) so far."
    )


class Breach(StatusModel):
    """A monitored metric confidently beyond its max, since when."""

    metric: str = Field(description="The metric's name in spec.monitoring.metrics.")
    since: datetime = Field(description="The check that first found it beyond.")
    value: float | None = Field(default=None, description="Its estimate then.")


class MonitoringStatus(StatusModel):
    """The stable revision watched between rollouts (spec.monitoring)."""

    revision: str | None = Field(default=None, description="The stable revision watched.")
    last_check: datetime | None = Field(default=None, description="When evidence was last added.")
    metrics: list[MetricResult] = Field(
        default_factory=list, description="Each metric's current check: evidence since it began."
    )
    breaches: list[Breach] = Field(
        default_factory=list,
        description="Metrics beyond their max, until a check finds them within.",
    )
    episode: str | None = Field(
        default=None,
        description="The retraining episode in course (the breach that began it): retraining "
        "is started once per episode.",
    )
    retrain_job: str | None = Field(
        default=None, description="The retraining Job created for the episode."
    )
    retrain_webhook: bool | None = Field(
        default=None, description="Whether the episode's retraining webhook was sent."
    )


class HistoryEntry(StatusModel):
    """An audit record: which model served when, and how its rollout ended."""

    revision: str
    version: str
    image: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    reason: str = ""
    requests: list[ManualRequest] | None = Field(
        default=None,
        description="Manual requests about this revision (who, when, why, result), the last 10.",
    )


class Decommission(StatusModel):
    """A ModelDeployment retired for good by `pitstop decommission`."""

    at: datetime = Field(description="When the operator handled the request.")
    by: str = Field(description="Who asked (pitstop.dev/requested-by).")
    reason: str = Field(default="", description="Why, as given with --reason.")
    request: str = Field(description="The request's id (pitstop.dev/request).")
    completed_at: datetime | None = Field(
        default=None,
        description="When every revision's Deployment and Service was gone (they are "
        "deleted once the traffic provider shows that no route sends to them).",
    )


class ModelDeploymentStatus(StatusModel):
    """What Pitstop observed and decided."""

    phase: Phase | None = Field(default=None, description="Where the rollout stands.")
    message: str = Field(default="", description="The current situation, for a person.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    stable: RevisionStatus | None = Field(default=None, description="The revision serving users.")
    candidate: RevisionStatus | None = Field(
        default=None, description="The revision being rolled out."
    )
    previous: RevisionStatus | None = Field(
        default=None,
        description="The stable revision before the last promotion, kept up for an instant "
        "rollback until its `until`.",
    )
    revision: str | None = Field(default=None, description="The revision the spec describes.")
    rejected_revision: str | None = Field(
        default=None,
        description="A revision that was rolled back or aborted; it is not tried again until "
        "the spec describes another revision or `pitstop retry` is asked.",
    )
    last_request: str | None = Field(
        default=None, description="Id of the last manual request (pitstop.dev/request) handled."
    )
    decommissioned: Decommission | None = Field(
        default=None,
        description="Set by `pitstop decommission`: no traffic, no revision runs, and none "
        "is created again, whatever the spec says, until the ModelDeployment is deleted.",
    )
    traffic: TrafficStatus = Field(default_factory=TrafficStatus, description="Traffic split.")
    analysis: AnalysisStatus | None = Field(default=None, description="Candidate analysis.")
    monitoring: MonitoringStatus | None = Field(
        default=None, description="The stable watched between rollouts (spec.monitoring)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Degraded, Paused, ImageBuilt, Reconciled.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        description="Past revisions, newest last: the last 20 entries, and older ones only "
        "while their revision still serves or is retained (revisionHistoryLimit).",
    )
