"""The operator's own metrics, served on `/metrics` for Prometheus (prometheus-client).

What a platform team watches: are reconciles succeeding and quick, is the work queue
keeping up, is the API server refusing us, where does every ModelDeployment stand, how
do rollouts end (and on which metric a rollback was decided), what does the judge see
right now, and how long do image builds take.

Label sets are bounded: per-ModelDeployment series are labelled by namespace, name,
metric name and role (candidate or stable), never by revision hash or request, and
they are removed when the analysis ends or the ModelDeployment goes — the series count
follows the number of ModelDeployments being analysed, not their history. Recording
functions take plain values so that every layer (the API facade, the work queue, the
reconcile) can record without importing another's types.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BUILD_SECONDS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)

RECONCILES = Counter(
    "pitstop_reconciles", "Reconciles by result (success, error, conflict, standby).",
    ["result"], registry=REGISTRY,
)  # fmt: skip
RECONCILE_ERRORS = Counter(
    "pitstop_reconcile_errors", "Failed reconciles by kind of error (the exception's class, "
    "or the API server's reason).", ["kind"], registry=REGISTRY,
)  # fmt: skip
RECONCILE_SECONDS = Histogram(
    "pitstop_reconcile_duration_seconds", "Time one reconcile of one ModelDeployment took.",
    buckets=_SECONDS, registry=REGISTRY,
)  # fmt: skip
QUEUE_WAIT = Histogram(
    "pitstop_workqueue_wait_seconds", "Time from a ModelDeployment's reconcile being asked "
    "for to it starting (waiting for a worker, or for this replica to lead).",
    buckets=_SECONDS, registry=REGISTRY,
)  # fmt: skip
QUEUE_DEPTH = Gauge(
    "pitstop_workqueue_depth", "ModelDeployments whose reconcile is asked for and not started.",
    registry=REGISTRY,
)  # fmt: skip
API_REQUESTS = Counter(
    "pitstop_api_requests", "Requests to the Kubernetes API by verb, resource (with its "
    "subresource: modeldeployments/status) and HTTP code (0: no answer).",
    ["verb", "resource", "code"], registry=REGISTRY,
)  # fmt: skip
API_SECONDS = Histogram(
    "pitstop_api_request_duration_seconds", "Time a request to the Kubernetes API took, by "
    "verb and resource (with its subresource), answered or not: what a reconcile that "
    "writes waits for.", ["verb", "resource"], buckets=_SECONDS, registry=REGISTRY,
)  # fmt: skip
ROLLOUTS_STARTED = Counter(
    "pitstop_rollouts_started", "Rollouts started, by strategy.", ["strategy"],
    registry=REGISTRY,
)  # fmt: skip
ROLLOUTS_ENDED = Counter(
    "pitstop_rollouts_ended", "Rollouts ended, by strategy and outcome (Promoted, RolledBack, "
    "Aborted, Superseded, Retired); `metric` names what a rollback was decided on (the "
    "failing analysis metric, smokeTest, or empty).", ["strategy", "outcome", "metric"],
    registry=REGISTRY,
)  # fmt: skip
ROLLBACK_SECONDS = Histogram(
    "pitstop_rollback_seconds", "Time from the look whose evidence first put the failing "
    "metric past its limit (the estimate, not yet confident) to the rollback's routing "
    "applied: how long a bad candidate served once it showed.", buckets=_SECONDS,
    registry=REGISTRY,
)  # fmt: skip
BUILDS = Counter(
    "pitstop_builds", "Image builds finished, by outcome (Succeeded, Failed).", ["outcome"],
    registry=REGISTRY,
)  # fmt: skip
BUILD_SECONDS = Histogram(
    "pitstop_build_duration_seconds", "Image build Jobs' time from start to completion.",
    buckets=_BUILD_SECONDS, registry=REGISTRY,
)  # fmt: skip


NOTIFICATIONS = Counter(
    "pitstop_notifications", "Webhook notifications by outcome (sent; failed: refused or "
    "out of retries; dropped: queue full).", ["outcome"], registry=REGISTRY,
)  # fmt: skip
EVENTS_WAITING = Gauge(
    "pitstop_events_waiting", "Kubernetes Events the operator has queued and not yet posted.",
    registry=REGISTRY,
)  # fmt: skip
EVENTS_DROPPED = Counter(
    "pitstop_events_dropped", "Kubernetes Events not posted because the operator's event "
    "queue was full (the API server falling behind) or the operator was stopping.",
    registry=REGISTRY,
)  # fmt: skip


# Known label values start at 0, so that rates and alerts see a series from the start
# (Prometheus' advice for counters whose label values are known in advance).
for _result in ("success", "error", "conflict", "standby"):
    RECONCILES.labels(result=_result)
for _outcome in ("Succeeded", "Failed"):
    BUILDS.labels(outcome=_outcome)
for _outcome in ("sent", "failed", "dropped"):
    NOTIFICATIONS.labels(outcome=_outcome)


@dataclass(frozen=True)
class Judged:
    """One analysis metric as the judge last saw it."""

    metric: str
    verdict: str
    candidate: float | None
    stable: float | None
    lower: float | None
    upper: float | None
    limit: float | None
    limit_kind: str


@dataclass(frozen=True)
class Seen:
    """One ModelDeployment as its last reconcile left it."""

    phase: str | None
    traffic: Mapping[str, int] = field(default_factory=dict)
    """Percent of user traffic by role: stable, candidate, mirrored."""
    judged: tuple[Judged, ...] = ()


class _Fleet(Collector):
    """Every ModelDeployment's phase and traffic, and each analysed one's metrics, from
    what the last reconcile of each saw (kept here, dropped when it goes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], Seen] = {}

    def saw(self, namespace: str, name: str, seen: Seen) -> None:
        with self._lock:
            self._seen[(namespace, name)] = seen

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._seen.pop((namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            seen = sorted(self._seen.items())
        by_phase = GaugeMetricFamily(
            "pitstop_modeldeployments", "ModelDeployments by phase.", labels=["phase"]
        )
        counts: dict[str, int] = {}
        for _, one in seen:
            if one.phase is not None:
                counts[one.phase] = counts.get(one.phase, 0) + 1
        for phase, count in sorted(counts.items()):
            by_phase.add_metric([phase], count)
        yield by_phase
        where = ["namespace", "name"]
        current = GaugeMetricFamily(
            "pitstop_modeldeployment_phase", "1 for each ModelDeployment's current phase.",
            labels=[*where, "phase"],
        )  # fmt: skip
        traffic = GaugeMetricFamily(
            "pitstop_traffic_percent", "Percent of each ModelDeployment's user traffic by "
            "role (stable, candidate; mirrored: copied to a shadow).", labels=[*where, "role"],
        )  # fmt: skip
        keys = [*where, "metric"]
        value = GaugeMetricFamily(
            "pitstop_analysis_value", "Each analysis metric's latest estimate, for the "
            "candidate and for the stable it is compared with.", labels=[*keys, "role"],
        )  # fmt: skip
        bound = GaugeMetricFamily(
            "pitstop_analysis_bound", "The judge's confidence bounds on the candidate's value "
            "(side: lower, upper).", labels=[*keys, "side"],
        )  # fmt: skip
        limit = GaugeMetricFamily(
            "pitstop_analysis_limit", "Each analysis metric's limit as the spec gives it "
            "(kind: max, min, maxAboveStable, maxRatioToStable).", labels=[*keys, "kind"],
        )  # fmt: skip
        verdict = GaugeMetricFamily(
            "pitstop_analysis_verdict", "1 for each analysis metric's current verdict "
            "(Pass, Fail, Inconclusive).", labels=[*keys, "verdict"],
        )  # fmt: skip
        for (namespace, name), one in seen:
            if one.phase is not None:
                current.add_metric([namespace, name, one.phase], 1.0)
            for role, percent in sorted(one.traffic.items()):
                traffic.add_metric([namespace, name, role], float(percent))
            for m in one.judged:
                at = [namespace, name, m.metric]
                for role, x in (("candidate", m.candidate), ("stable", m.stable)):
                    if x is not None:
                        value.add_metric([*at, role], x)
                for side, x in (("lower", m.lower), ("upper", m.upper)):
                    if x is not None:
                        bound.add_metric([*at, side], x)
                if m.limit is not None:
                    limit.add_metric([*at, m.limit_kind], m.limit)
                for v in ("Pass", "Fail", "Inconclusive"):
                    verdict.add_metric([*at, v], 1.0 if m.verdict == v else 0.0)
        yield from (current, traffic, value, bound, limit, verdict)


FLEET = _Fleet()
REGISTRY.register(FLEET)


def api_request(verb: str, path: str, code: int, seconds: float) -> None:
    verb, resource = verb.upper(), resource_of(path)
    API_REQUESTS.labels(verb=verb, resource=resource, code=str(code)).inc()
    API_SECONDS.labels(verb=verb, resource=resource).observe(seconds)


def resource_of(path: str) -> str:
    """The resource a request's path names: /api/v1/namespaces/ns/services/x -> services,
    .../modeldeployments/x/status -> modeldeployments/status (a bounded label)."""
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if parts[:1] == ["api"]:
        parts = parts[2:]  # api, v1
    elif parts[:1] == ["apis"]:
        parts = parts[3:]  # apis, group, version
    else:
        return "other"
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:] if len(parts) > 2 else ["namespaces"]
    if not parts:
        return "discovery"
    resource = parts[0]
    return f"{resource}/{parts[2]}" if len(parts) > 2 else resource


def reconciled(seconds: float, result: str, error_kind: str | None = None) -> None:
    RECONCILES.labels(result=result).inc()
    RECONCILE_SECONDS.observe(seconds)
    if error_kind is not None:
        RECONCILE_ERRORS.labels(kind=error_kind).inc()


def rollout_started(strategy: str) -> None:
    ROLLOUTS_STARTED.labels(strategy=strategy).inc()


def rollout_ended(strategy: str, outcome: str, metric: str = "") -> None:
    ROLLOUTS_ENDED.labels(strategy=strategy, outcome=outcome, metric=metric).inc()


def build_finished(outcome: str, seconds: float | None) -> None:
    BUILDS.labels(outcome=outcome).inc()
    if seconds is not None and seconds >= 0:
        BUILD_SECONDS.observe(seconds)


def notification(outcome: str) -> None:
    NOTIFICATIONS.labels(outcome=outcome).inc()


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Serve `/metrics` on a thread of its own (prometheus-client's server)."""
    start_http_server(port, addr=address, registry=REGISTRY)
