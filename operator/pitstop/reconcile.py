"""One reconcile of one ModelDeployment: observe, decide, act, write status.

Level-based: the same function runs on create, update, operator start, child events
and timers, and always converges from whatever the API holds. The decision itself is
made by a pure strategy; this module only gathers observations and carries out
actions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ModelDeploymentStatus
from pitstop.k8s.client import KubeClient
from pitstop.rendering import children, labels
from pitstop.strategies import conditions, phase, replace
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import (
    Action,
    Decision,
    DeleteRevision,
    EnsureRevision,
    Observations,
    RevisionState,
    RouteEntry,
    ScaleRevision,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    requeue_after: float | None


def reconcile(kube: KubeClient, namespace: str, name: str, now: datetime | None = None) -> Result:
    """Bring one ModelDeployment's children and status in line with its spec."""
    now = now or datetime.now(UTC)
    obj = kube.get_model_deployment(namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return Result(None)  # children go with it through garbage collection
    try:
        md = ModelDeployment.from_object(obj)
    except ValidationError as error:
        _report_invalid(kube, obj, error, now)
        return Result(None)

    image = md.spec.image
    revision = children.revision_of(children.pod_template(md, image or ""))
    seen = Observations(revision=revision, image=image, revisions=_observe(kube, md))
    decision = replace.decide(md, seen, now)
    _act(kube, md, image, decision.actions)
    _write(kube, obj, md.status, decision)
    return Result(decision.requeue_after)


def _observe(kube: KubeClient, md: ModelDeployment) -> dict[str, RevisionState]:
    found: dict[str, RevisionState] = {}
    selector = labels.owner_selector(md.metadata.name)
    for item in kube.list_deployments(md.metadata.namespace, selector):
        revision = item["metadata"].get("labels", {}).get(labels.REVISION)
        if revision is None:
            continue
        found[revision] = _state(item)
    return found


def _state(deployment: dict[str, Any]) -> RevisionState:
    """Available = the controller saw the latest spec and every replica is ready."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    available = current and updated >= wanted and ready >= wanted
    return RevisionState(replicas=wanted, ready_replicas=ready, available=available)


def _act(
    kube: KubeClient, md: ModelDeployment, image: str | None, actions: tuple[Action, ...]
) -> None:
    ns, name = md.metadata.namespace, md.metadata.name
    for action in actions:
        match action:
            case EnsureRevision(revision=revision, replicas=replicas):
                assert image is not None, "a revision is only ensured once its image is known"
                kube.apply(children.deployment(md, image, revision, replicas))
                kube.apply(children.revision_service(md, revision))
            case ScaleRevision(revision=revision, replicas=replicas):
                kube.scale_deployment(ns, labels.revision_name(name, revision), replicas)
            case RouteEntry(revision=revision):
                kube.apply(children.entry_service(md, revision))
            case DeleteRevision(revision=revision):
                child = labels.revision_name(name, revision)
                kube.delete("apps/v1", "Deployment", ns, child)
                kube.delete("v1", "Service", ns, child)


def _write(
    kube: KubeClient, obj: dict[str, Any], old: ModelDeploymentStatus, decision: Decision
) -> None:
    meta = obj["metadata"]
    if decision.status != old:
        body = decision.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        kube.patch_status(meta["namespace"], meta["name"], body)
    for event in decision.events:
        log.info("%s/%s %s: %s", meta["namespace"], meta["name"], event.reason, event.message)
        kube.post_event(obj, event.type, event.reason, event.message)


def _report_invalid(
    kube: KubeClient, obj: dict[str, Any], error: ValidationError, now: datetime
) -> None:
    """A spec the API server accepted but the operator cannot use: say which field."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = f"{field}: {first['msg']}"
    try:
        old = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        old = ModelDeploymentStatus()
    generation = int(obj["metadata"].get("generation", 0))
    conds = conditions.set_condition(
        list(old.conditions), conditions.READY, "False", Reason.INVALID_SPEC, message,
        generation, now,
    )  # fmt: skip
    new = old.model_copy(update={"conditions": conds, "observed_generation": generation})
    new = new.model_copy(update={"phase": phase.of(new), "message": message})
    if new != old:
        log.warning("invalid ModelDeployment %s: %s", obj["metadata"]["name"], message)
        kube.patch_status(
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            new.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        kube.post_event(obj, "Warning", Reason.INVALID_SPEC, message)
