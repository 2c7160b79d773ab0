"""One reconcile of one ModelDeployment: observe, decide, write status, act.

Level-based: the same function runs on create, update, operator start, child events
and timers, and always converges from whatever the API holds. The decision itself is
made by the pure rollout engine; this module only gathers observations (children,
image, traffic, manual requests) and carries out the actions.

The status is written *before* the actions, with a resourceVersion precondition
(`commit`). A decision takes effect only once it is committed: if the write fails
(refused, conflicting, the API away), nothing was done and the next pass decides again
from what the API holds. Once committed, every later pass reads it and re-applies its
routing, so an action that failed is completed from the status, never undone. The
reverse order would let a failed write undo a rollback: traffic already moved off the
candidate, the next pass re-reads the status that still says the candidate serves 50%,
and routes 50% back to it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pitstop import commit, reporting
from pitstop.analysis import judge, monitoring
from pitstop.api import durations
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import AnalysisStatus, ModelDeploymentStatus
from pitstop.archive import records as archive
from pitstop.archive import store as archive_store
from pitstop.images import resolve as images
from pitstop.k8s import errors
from pitstop.k8s.client import KubeClient
from pitstop.metrics import collect, keys, lineage, loadtest, pods, pretraffic
from pitstop.metrics.builtin import Scraper
from pitstop.metrics.load import LoadGenerator
from pitstop.notify import sender, transitions
from pitstop.notify.sender import Notifier, Target
from pitstop.rendering import children, labels, retrain
from pitstop.strategies import conditions, engine, phase, requests, trouble
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import (
    Action,
    Checks,
    DeleteRevision,
    EnsureRevision,
    Event,
    ImageState,
    Observations,
    RevisionState,
    ScaleRevision,
    SetTraffic,
    Traffic,
)
from pitstop.traffic import provider as traffic
from pitstop.traffic.registry import PROVIDERS

log = logging.getLogger(__name__)

# What each strategy needs from the traffic provider.
NEEDS = {"Canary": {traffic.WEIGHTS}, "Shadow": {traffic.MIRROR}, "BlueGreen": set[str]()}


@dataclass(frozen=True)
class Result:
    requeue_after: float | None
    conflict: bool = False
    """The object moved while this pass decided: nothing was done, run again at once."""


# Load and stress tests of callers that bring none (the CLI, tests driving a reconcile).
_TESTER = loadtest.Runner()

# After a conflict (the object moved since it was read), read it again at once.
CONFLICT_RETRY_SECONDS = 0.0


def reconcile(
    kube: KubeClient,
    namespace: str,
    name: str,
    now: datetime | None = None,
    scraper: Scraper | None = None,
    loader: LoadGenerator | None = None,
    notifier: Notifications | None = None,
    tester: loadtest.Runner | None = None,
) -> Result:
    """Bring one ModelDeployment's children and status in line with its spec.

    A pass that raises says why on the object (`commit.Writer.failed`) before the error
    goes on to the work queue, which retries with backoff; `errors.NotLeader` goes on
    untouched (another replica leads: nothing may be written, not even the failure)."""
    now = now or datetime.now(UTC)
    obj = kube.get_model_deployment(namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        reporting.forget(namespace, name)
        return Result(None)  # children go with it through garbage collection
    writer = commit.Writer(kube, obj, now)
    try:
        return _reconcile(kube, writer, obj, now, scraper or Scraper(kube),
                          loader or LoadGenerator(), notifier, tester or _TESTER)  # fmt: skip
    except errors.Conflict as conflict:
        log.info("%s/%s: %s; reconciling again", namespace, name, conflict)
        return Result(CONFLICT_RETRY_SECONDS, conflict=True)
    except errors.NotLeader:
        raise
    except Exception as error:
        writer.failed(str(error) if isinstance(error, ActionFailed) else errors.describe(error))
        raise


class ActionFailed(RuntimeError):
    """An action failed; the message says which, and the API server's answer."""


def _reconcile(
    kube: KubeClient,
    writer: commit.Writer,
    obj: dict[str, Any],
    now: datetime,
    scraper: Scraper,
    loader: LoadGenerator,
    notifier: Notifications | None,
    tester: loadtest.Runner,
) -> Result:
    started = time.monotonic()
    try:
        md = ModelDeployment.from_object(obj)
    except ValidationError as error:
        invalid = _invalid(obj, writer.status, error, now)
        if writer.commit(invalid):
            log.warning("invalid ModelDeployment %s/%s: %s", *md_name(obj), invalid.message)
            writer.post([Event("Warning", Reason.INVALID_SPEC, invalid.message)])
        reporting.invalid(*md_name(obj), invalid)
        writer.succeeded()
        return Result(None)

    image = (
        images.ImageResult(md.spec.image, "True", Reason.DECOMMISSIONED, "decommissioned")
        if md.status.decommissioned is not None  # nothing runs again: nothing is built
        else images.resolve(kube, md, now)
    )
    revision = children.revision_of(children.pod_template(md, image.image or ""))
    router = PROVIDERS[md.spec.traffic.provider](kube)
    request = requests.parse(md.metadata.annotations)
    extra: list[Event] = []
    if isinstance(request, str):
        extra.append(Event("Warning", Reason.BAD_REQUEST, request))
        request = None
    seen = Observations(
        revision=revision,
        image=ImageState(image.image, image.status, image.reason, image.message),
        revisions=_observe(kube, md),
        traffic=_traffic(router, md, revision),
        request=request,
    )
    analysis, seen = _analyse(kube, scraper, tester, md, seen, now)
    analysis = _load(kube, loader, md, analysis)
    decision = engine.decide(md, seen, now)
    analysis = _begin_analysis(scraper, md, decision.status, analysis, now)
    status = decision.status.model_copy(update={"analysis": analysis})
    status, watched = _monitor(scraper, md, status, now)
    _archive(kube, scraper, md, writer.status, status)
    writer.commit(status)  # the decision takes effect from here on (see the docstring)
    writer.post((*extra, *decision.events, *watched.events))
    _act(kube, router, md, image.image, decision.actions)
    status = _retrain(kube, writer, notifier, md, status, watched)
    writer.succeeded()
    target = _analysed(status)
    reporting.reconciled(md, md.status, status, decision.events, target is not None, started)
    if notifier is not None:
        _notify(kube, writer, notifier, md, status, decision.events, now)
    delays = [d for d in (decision.requeue_after, image.requeue_after, watched.next_look)
              if d is not None]  # fmt: skip
    if seen.smoke is not None and seen.smoke.verdict == "Inconclusive":
        delays.append(_look_seconds())  # a test before traffic runs: nothing else will say when
    if target is not None and md.spec.analysis.metrics:
        rate = scraper.rate(md.metadata.namespace, md.metadata.name, target[0])
        delays.append(_next_look(md, analysis, now, rate))
    return Result(min(delays) if delays else None)


@dataclass(frozen=True)
class Watched:
    """What watching the stable (spec.monitoring) did in one pass."""

    events: tuple[Event, ...] = ()
    began: str | None = None
    """The recommendation of an episode that began in this pass."""
    package: dict[str, Any] | None = None
    next_look: float | None = None


def _monitor(
    scraper: Scraper, md: ModelDeployment, status: ModelDeploymentStatus, now: datetime
) -> tuple[ModelDeploymentStatus, Watched]:
    """Watch the stable between rollouts: read its pods when a look is due, judge the
    monitored metrics, and say when a retraining episode begins or ends (condition
    RetrainingRecommended, an Event). During a rollout the analysis reads the pods, and
    the watch waits; a new stable starts a new watch."""
    spec, previous = md.spec.monitoring, md.status.monitoring
    ns, name = md.metadata.namespace, md.metadata.name
    stable = status.stable
    if spec is None or stable is None:
        scraper.forget(ns, name, "monitoring")
        cleared = conditions.remove(status.conditions, conditions.RETRAINING_RECOMMENDED)
        return status.model_copy(update={"monitoring": None, "conditions": cleared}), Watched()
    if status.candidate is not None or status.previous is not None:
        return status.model_copy(update={"monitoring": previous}), Watched()
    interval = durations.parse(spec.interval).total_seconds()
    last = previous.last_check if previous and previous.revision == stable.revision else None
    wait = interval - (now - last).total_seconds() if last is not None else 0.0
    if wait > 0:
        return status.model_copy(update={"monitoring": previous}), Watched(next_look=wait)
    look, why = collect.look(scraper, md, stable.revision, None, "monitoring")
    if why:
        log.info("%s/%s: monitoring %s", ns, name, why)
    checked = monitoring.check(spec, previous, stable.revision, now, look)
    watch = checked.status
    conds, events = status.conditions, []
    began = None
    if checked.began is not None:
        began = monitoring.describe(spec, watch, checked.began)
        conds = conditions.set_condition(conds, conditions.RETRAINING_RECOMMENDED, "True", Reason.BEYOND_LIMIT,
                                         began, md.metadata.generation, now)  # fmt: skip
        events.append(Event("Warning", conditions.RETRAINING_RECOMMENDED, began))
    elif checked.ended:
        text = f"every monitored metric of revision {stable.revision} is within its max again"
        conds = conditions.set_condition(conds, conditions.RETRAINING_RECOMMENDED, "False", Reason.WITHIN_LIMITS,
                                         text, md.metadata.generation, now)  # fmt: skip
        events.append(Event("Normal", "RetrainingNoLongerRecommended", text))
    package = dict(look.candidate.package) if look and look.candidate.package else None
    if began is not None and spec.retrain is not None and spec.retrain.webhook is not None:
        watch = watch.model_copy(update={"retrain_webhook": True})  # sent after the commit
    updated = status.model_copy(update={"monitoring": watch, "conditions": conds})
    return updated, Watched(tuple(events), began, package, next_look=interval)


def _retrain(
    kube: KubeClient,
    writer: commit.Writer,
    notifier: Notifications | None,
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    watched: Watched,
) -> ModelDeploymentStatus:
    """Start the retraining of an episode, once: the webhook only in the pass that
    committed the episode's beginning (at most once); the Job, named after the episode,
    until it exists (a second create finds the first)."""
    spec, watch = md.spec.monitoring, status.monitoring
    if spec is None or spec.retrain is None or watch is None or watch.episode is None:
        return status
    reason = watched.began or f"retraining recommended ({watch.episode})"
    params = retrain.parameters(md, watch, reason, watched.package)
    if watched.began is not None and spec.retrain.webhook is not None and notifier is not None:
        notifier.sender.post(spec.retrain.webhook.url, {"kind": "Retrain", **params})
    wanted = retrain.job_name(md.metadata.name, watch.episode)
    if spec.retrain.job is None or watch.retrain_job == wanted:
        return status
    created = kube.create_retrain_job(retrain.job(md, watch.episode, params))
    if created:
        writer.post([Event("Normal", "RetrainingStarted", f"Job {wanted} started: {reason}")])
    done = status.model_copy(
        update={"monitoring": watch.model_copy(update={"retrain_job": wanted})}
    )
    writer.commit(done)
    return done


def _archive(
    kube: KubeClient,
    scraper: Scraper,
    md: ModelDeployment,
    before: ModelDeploymentStatus,
    after: ModelDeploymentStatus,
) -> None:
    """Archive the revisions this pass ends, before the pass is committed: a failed
    write fails the pass, and the next one, deciding again, archives them then (a record
    is keyed by revision and start, so writing it twice keeps one)."""
    ended = archive.newly_ended(before, after)
    if ended:
        ns, name = md.metadata.namespace, md.metadata.name
        found = [
            archive.record(ns, name, md.spec.model.name, e, (after.analysis, before.analysis),
                           lineage.package(scraper, md, e.revision))
            for e in ended
        ]  # fmt: skip
        archive_store.keep(kube, ns, name, found)


# How often the builtin evidence is read while a revision is analysed: new evidence can
# change a verdict at any moment, and the judge's confidence does not suffer from
# looking often (its bounds hold at every look). Sooner, down to _min_look_seconds(), when
# the requests the judge says it still needs are due before then. PITSTOP_LOOK_SECONDS
# is read when needed, as every setting from the environment is.
def _look_seconds() -> float:
    return float(os.environ.get("PITSTOP_LOOK_SECONDS", "1.0"))


_SHORTEST_LOOK = 0.25


def _min_look_seconds() -> float:
    return min(_look_seconds(), _SHORTEST_LOOK)


def _next_look(
    md: ModelDeployment, analysis: AnalysisStatus | None, now: datetime, rate: float | None
) -> float:
    """Seconds to the next look: when a verdict can next change, within bounds."""
    metrics = md.spec.analysis.metrics
    if any(m.builtin is not None for m in metrics):
        return _due(analysis, rate)
    last = analysis.last_value_check if analysis is not None else None
    if last is None:
        return _look_seconds()
    left = last + durations.parse(md.spec.analysis.interval) - now
    return max(_look_seconds(), left.total_seconds())


def _due(analysis: AnalysisStatus | None, rate: float | None) -> float:
    """A verdict one answer away is not left waiting a whole look, and no look comes
    before it can say something new."""
    soonest = judge.seconds_to_verdict(analysis, rate)
    look = _look_seconds()
    if soonest is None:
        return look
    return min(look, max(min(look, _SHORTEST_LOOK), soonest))


def _analysed(status: ModelDeploymentStatus) -> tuple[str, str] | None:
    """(revision under analysis, its baseline): a candidate taking traffic or mirrors,
    or a just-promoted stable while the previous one is still up."""
    candidate, stable = status.candidate, status.stable
    if candidate is not None and stable is not None and candidate.state in _ANALYSED:
        return candidate.revision, stable.revision
    if status.previous is not None and stable is not None:
        return stable.revision, status.previous.revision
    return None


# A blue/green preview takes no user traffic, so request metrics would never reach
# minRequests there: its gate is the smoke test, and analysis runs after the switch.
_ANALYSED = ("Shadow", "Canary")


def _analyse(
    kube: KubeClient, scraper: Scraper, tester: loadtest.Runner, md: ModelDeployment,
    seen: Observations, now: datetime,
) -> tuple[AnalysisStatus | None, Observations]:  # fmt: skip
    """Run the checks before traffic (smoke, load, stress tests) and the interval's
    measurements that are due."""
    current = md.status.analysis
    candidate = md.status.candidate
    smoke_checks: Checks | None = None
    if candidate is not None and candidate.state in (None, "Starting"):
        stable = md.status.stable.revision if md.status.stable else None
        current, smoke_checks = pretraffic.check(scraper, tester, md, current,
                                                 candidate.revision, stable)  # fmt: skip
    elif candidate is None:
        tester.forget(md.metadata.namespace, md.metadata.name)
    spec = md.spec.analysis
    target = _analysed(md.status)
    checks = Checks()
    ns, name = md.metadata.namespace, md.metadata.name
    if not spec.metrics or target is None:
        scraper.forget(ns, name)
        return current, replace(seen, checks=checks, smoke=smoke_checks)
    revision, baseline = target
    if current is None or current.revision != revision:
        scraper.forget(ns, name)  # every pod's first look of this analysis is a baseline
        current = judge.evaluate(spec, current, revision, now)
    note = None
    look = None
    # At most one look per _min_look_seconds(): the status this look writes comes straight
    # back as a watch event and another reconcile, which must not look (and write) again.
    looked = current.last_check
    if any(m.builtin is not None for m in spec.metrics) and (
        looked is None or (now - looked).total_seconds() >= _min_look_seconds() * 0.9
    ):
        look, note = collect.look(scraper, md, revision, baseline)
    counts = values = None
    if any(m.prometheus is not None or m.webhook is not None for m in spec.metrics) and (
        current.last_value_check is None
        or now - current.last_value_check >= durations.parse(spec.interval)
    ):
        counts, values = collect.measure(md, revision, baseline)
    if look is not None or counts is not None or values is not None:
        current = judge.evaluate(spec, current, revision, now, look, counts, values)
    message = current.message if note is None else f"{current.message} ({note})"
    checks = Checks(current.verdict, message)
    return current, replace(seen, checks=checks, smoke=smoke_checks)


@dataclass(frozen=True)
class Notifications:
    """Where transitions go: the queue that delivers them, and the operator's own target."""

    sender: Notifier
    default: Target | None = None


def _notify(
    kube: KubeClient,
    writer: commit.Writer,
    notifications: Notifications,
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    events: Sequence[Event],
    now: datetime,
) -> None:
    """Queue this pass's transitions (committed, acted on) for the webhooks that want
    them; a target that cannot be resolved gets a Warning Event instead."""
    found = transitions.transitions(md, md.status, status, events, now)
    if not found:
        return
    to, problems = sender.targets(kube, md, notifications.default)
    notifications.sender.send(to, found)
    writer.post([Event("Warning", Reason.NOTIFY_FAILED, p) for p in problems])


def _begin_analysis(
    scraper: Scraper,
    md: ModelDeployment,
    decided: ModelDeploymentStatus,
    analysis: AnalysisStatus | None,
    now: datetime,
) -> AnalysisStatus | None:
    """When this pass's decision starts analysing a revision (a candidate's first
    traffic or mirrors, a promotion), read every pod's counters now, before the actions
    route traffic: those baselines make the candidate's very first answers evidence.
    Left to the next look, a second of them would be its baseline and lost (the rollback
    benchmark's candidate fails its 5th answer: a second is 10 of the ~40 answers a
    rollback needs)."""
    target = _analysed(decided)
    spec = md.spec.analysis
    if target is None or target == _analysed(md.status) or not spec.metrics:
        return analysis
    revision, baseline = target
    scraper.forget(md.metadata.namespace, md.metadata.name)
    if any(m.builtin is not None for m in spec.metrics):
        collect.look(scraper, md, revision, baseline)  # all pods are new: baselines only
    if analysis is not None and analysis.revision == revision:
        return analysis
    return judge.evaluate(spec, analysis, revision, now)


def _load(
    kube: KubeClient, loader: LoadGenerator, md: ModelDeployment, analysis: AnalysisStatus | None
) -> AnalysisStatus | None:
    """Keep `analysis.load` running while a revision is analysed; count what it sent."""
    key = (md.metadata.namespace, md.metadata.name)
    target = _analysed(md.status)
    settings = md.spec.analysis.load
    if settings is None or target is None or analysis is None:
        loader.stop(key)
        return analysis
    try:
        headers = keys.headers(kube, md)
    except LookupError as error:
        log.warning("%s/%s: no generated load: %s", *key, error)
        loader.stop(key)
        return analysis
    targets = {
        revision: sorted(pods.ready_addresses(kube, key[0], key[1], revision).values())
        for revision in target
    }
    loader.want(key, settings.requests_per_second, targets, headers)
    sent = loader.take(key)
    if not sent:
        return analysis
    return analysis.model_copy(update={"generated": (analysis.generated or 0) + sent})


def _traffic(router: traffic.Provider, md: ModelDeployment, revision: str) -> Traffic:
    by_replicas = traffic.WEIGHTS_BY_REPLICAS in router.capabilities
    strategy = md.spec.strategy
    needs = set(NEEDS[strategy.type])
    if strategy.type == "Shadow" and strategy.shadow and strategy.shadow.promote_with == "Canary":
        needs.add(traffic.WEIGHTS)
    lacking = sorted(needs - router.capabilities)
    problem = router.problem(md)
    if lacking:
        problem = (f"traffic provider {router.name} cannot do {', '.join(lacking)}, which "
                   f"strategy {strategy.type} needs")  # fmt: skip
    if problem is not None:
        return Traffic(by_replicas, problem=problem, verified=False, message=problem)
    # Only a rollout about to start asks (the engine reads it then, and nowhere else):
    # a provider may have to read the gateway behind the route to answer.
    stable = md.status.stable
    starting = md.status.candidate is None and stable is not None and stable.revision != revision
    unsupported = router.unsupported(md, frozenset(needs)) if starting else None
    expected = engine.current_split(md)
    if expected is None or (md.status.candidate is None and md.status.decommissioned is None):
        return Traffic(by_replicas, unsupported=unsupported)
    check = router.verify(md, expected)
    return Traffic(by_replicas, unsupported=unsupported, verified=check.ok, message=check.message)


def _observe(kube: KubeClient, md: ModelDeployment) -> dict[str, RevisionState]:
    found: dict[str, RevisionState] = {}
    short: dict[str, dict[str, Any]] = {}
    selector = labels.owner_selector(md.metadata.name)
    for item in kube.list_deployments(md.metadata.namespace, selector):
        revision = item["metadata"].get("labels", {}).get(labels.REVISION)
        if revision is not None:
            found[revision] = _state(item)
            if not found[revision].available and found[revision].replicas > 0:
                short[revision] = item
    if short:
        # Only a revision short of ready pods costs a look at its pods: they say why
        # (crash loop, image pull, scheduling), which the progress deadline reports.
        pods: dict[str, list[dict[str, Any]]] = {}
        for pod in kube.list_pods(md.metadata.namespace, selector):
            revision = pod["metadata"].get("labels", {}).get(labels.REVISION)
            pods.setdefault(revision, []).append(pod)
        for revision, item in short.items():
            found[revision] = replace(
                found[revision], trouble=trouble.of(item, pods.get(revision, []))
            )
    return found


def _state(deployment: dict[str, Any]) -> RevisionState:
    """Available = the controller saw the latest spec and every replica is ready."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    total = int(status.get("replicas", 0) or 0)
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    available = current and updated >= wanted and ready >= wanted and total <= wanted
    return RevisionState(replicas=wanted, ready_replicas=ready, available=available)


def _act(
    kube: KubeClient,
    router: traffic.Provider,
    md: ModelDeployment,
    image: str | None,
    actions: tuple[Action, ...],
) -> None:
    for action in actions:
        try:
            _carry_out(kube, router, md, image, action)
        except errors.NotLeader:
            raise
        except Exception as error:
            raise ActionFailed(f"{_doing(md, router, action)}: {errors.describe(error)}") from error


def _carry_out(
    kube: KubeClient,
    router: traffic.Provider,
    md: ModelDeployment,
    image: str | None,
    action: Action,
) -> None:
    ns, name = md.metadata.namespace, md.metadata.name
    match action:
        case EnsureRevision(revision=revision, replicas=replicas):
            assert image is not None, "a revision is only ensured once its image is known"
            kube.apply(children.deployment(md, image, revision, replicas))
            kube.apply(children.revision_service(md, revision))
            if children.feedback_of(md.spec) is not None:
                kube.apply(children.peers_service(md))
        case ScaleRevision(revision=revision, replicas=replicas):
            kube.scale_deployment(ns, labels.revision_name(name, revision), replicas)
        case SetTraffic():
            if traffic.WEIGHTS_BY_REPLICAS not in router.capabilities:
                # With a mesh or gateway the route splits traffic; the entry Service
                # still exists for callers inside the cluster and selects the stable.
                kube.apply(children.entry_service(md, action.stable or labels.NO_REVISION))
            router.apply(md, action)
        case DeleteRevision(revision=revision):
            child = labels.revision_name(name, revision)
            kube.delete("apps/v1", "Deployment", ns, child)
            kube.delete("v1", "Service", ns, child)


def _doing(md: ModelDeployment, router: traffic.Provider, action: Action) -> str:
    """What an action was doing, for the message of its failure."""
    name = md.metadata.name
    match action:
        case EnsureRevision(revision=revision):
            child = labels.revision_name(name, revision)
            return f"applying the Deployment and Service {child} of revision {revision}"
        case ScaleRevision(revision=revision, replicas=replicas):
            child = labels.revision_name(name, revision)
            return f"scaling the Deployment {child} to {replicas}"
        case SetTraffic():
            return f"routing traffic with the {router.name} provider"
        case DeleteRevision(revision=revision):
            return f"deleting revision {revision}"
    return type(action).__name__


def _invalid(
    obj: dict[str, Any], old: ModelDeploymentStatus, error: ValidationError, now: datetime
) -> ModelDeploymentStatus:
    """A spec the API server accepted but the operator cannot use: say which field."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = f"{field}: {first['msg']}"
    generation = int(obj["metadata"].get("generation", 0))
    conds = conditions.set_condition(
        list(old.conditions), conditions.READY, "False", Reason.INVALID_SPEC, message,
        generation, now,
    )  # fmt: skip
    new = old.model_copy(update={"conditions": conds, "observed_generation": generation})
    return phase.settle(new.model_copy(update={"message": message}), generation, now)


def md_name(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]
