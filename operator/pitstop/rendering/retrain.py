"""The retraining a monitoring episode starts: a Job from the user's template, or the
webhook's body, both carrying the same parameters. Pure."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pitstop.api.resource import ModelDeployment
from pitstop.api.status import MonitoringStatus
from pitstop.rendering import labels
from pitstop.rendering.children import owner_reference

Object = dict[str, Any]
ROLE = "retrain"


def parameters(
    md: ModelDeployment, status: MonitoringStatus, reason: str,
    package: Mapping[str, Any] | None,
) -> dict[str, str]:  # fmt: skip
    """What a retraining needs to know: which model and data, and why now."""
    data = (package or {}).get("data") or {}
    evidence = {
        "episode": status.episode,
        "revision": status.revision,
        "breaches": [b.model_dump(mode="json", exclude_none=True) for b in status.breaches],
    }
    return {
        "PITSTOP_MODEL": md.spec.model.name,
        "PITSTOP_MODEL_VERSION": md.spec.model.version,
        "PITSTOP_PACKAGE_DIGEST": str((package or {}).get("digest") or ""),
        "PITSTOP_DATA_URI": str(data.get("uri") or ""),
        "PITSTOP_DATA_SHA256": str(data.get("sha256") or ""),
        "PITSTOP_REASON": reason,
        "PITSTOP_EVIDENCE": json.dumps(evidence, separators=(",", ":")),
    }


def job_name(deployment: str, episode: str) -> str:
    """One name per episode: creating it twice finds the first (at most one Job)."""
    digest = hashlib.sha256(episode.encode()).hexdigest()[:8]
    return f"{deployment[:44]}-retrain-{digest}"


def job(md: ModelDeployment, episode: str, params: Mapping[str, str]) -> Object:
    """The user's JobTemplateSpec as a Job owned by the ModelDeployment, every container
    given the parameters as environment variables (after its own, so they win)."""
    retrain = md.spec.monitoring.retrain if md.spec.monitoring else None
    assert retrain is not None
    assert retrain.job is not None
    template = copy.deepcopy(retrain.job)
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    for container in pod_spec.get("containers") or []:
        own = [e for e in container.get("env") or [] if e.get("name") not in params]
        container["env"] = own + [{"name": k, "value": v} for k, v in params.items()]
    name = md.metadata.name
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, episode),
            "namespace": md.metadata.namespace,
            "labels": {**(meta.get("labels") or {}), **labels.base(name), labels.ROLE: ROLE},
            "annotations": {**(meta.get("annotations") or {}), "pitstop.dev/episode": episode},
            "ownerReferences": [owner_reference(md)],
        },
        "spec": spec,
    }
