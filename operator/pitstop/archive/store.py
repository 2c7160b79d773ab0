"""Reads and writes the archive ConfigMap (see `records` for what it keeps and why)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pitstop.api.status import ModelDeploymentStatus
from pitstop.archive import records
from pitstop.archive.records import Record
from pitstop.k8s.client import KubeClient

log = logging.getLogger(__name__)


def keep(kube: KubeClient, namespace: str, deployment: str, new: Sequence[Record]) -> None:
    """Add `new` to the archive of `deployment` (read, merge, apply).

    One reconcile at a time per ModelDeployment, and one leader, so nothing else writes
    the archive between the read and the apply."""
    if not new:
        return
    found = kube.get("v1", "ConfigMap", namespace, records.name_of(deployment))
    kept = held(found, f"{namespace}/{deployment}")
    kube.apply(records.config_map(namespace, deployment, records.merged(kept, new)))


def held(config_map: dict[str, Any] | None, what: str) -> list[Record]:
    """The records an archive ConfigMap holds, oldest first ([] for none)."""
    kept, problem = records.loads(((config_map or {}).get("data") or {}).get(records.KEY))
    if problem is not None:
        log.warning("%s: archive partly unreadable: %s", what, problem)
    return kept


def deleted(kube: KubeClient, obj: dict[str, Any]) -> None:
    """Archive the revisions a deleted ModelDeployment was still serving, from the last
    body its watch showed (without a finalizer this is best effort: an operator that is
    down while the ModelDeployment goes does not see it go)."""
    meta = obj.get("metadata") or {}
    try:
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return
    model = ((obj.get("spec") or {}).get("model") or {}).get("name", "")
    ended = records.still_serving(status, datetime.now(UTC), "the ModelDeployment was deleted")
    new = [records.record(meta["namespace"], meta["name"], model, e) for e in ended]
    keep(kube, meta["namespace"], meta["name"], new)
