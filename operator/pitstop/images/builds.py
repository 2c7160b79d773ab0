"""Build Jobs and build records in the API: observe them, start one, record a result.

A build is known by its key (rendering.build_job.build_key). Its attempts are the Jobs
labelled with the key, whoever started them, so two ModelDeployments of one namespace
that need the same package share one build. A finished build is recorded in a
ConfigMap `pitstop-build-<key>` (image, image digest, package digest) that outlives the
Jobs, so a later ModelDeployment asking for the same key reuses the image instead of
building it again. The record belongs to the namespace, not to one ModelDeployment
(it describes what the registry holds), so it has no owner.

Only what the pure `images.decision` needs is read here; nothing is decided here.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any

from pitstop.images import decision
from pitstop.k8s.client import KubeClient
from pitstop.rendering import build_job, labels

log = logging.getLogger(__name__)
Object = dict[str, Any]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
REPORTED_PREFIX = "reported.pitstop.dev/"
LOG_LINES = 20
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


def reported_annotation(model_deployment: str) -> str:
    """Marks a failed Job as announced to one ModelDeployment (one Event each)."""
    return REPORTED_PREFIX + model_deployment


def observe(
    kube: KubeClient, namespace: str, key: str, model_deployment: str
) -> tuple[decision.Record | None, list[decision.Attempt]]:
    record = _record(kube.get("v1", "ConfigMap", namespace, build_job.record_name(key)))
    if record is not None:
        return record, []
    jobs = kube.list_jobs(namespace, build_job.key_selector(key))
    return None, [_attempt(kube, job, model_deployment) for job in jobs]


def _record(obj: Object | None) -> decision.Record | None:
    data = (obj or {}).get("data") or {}
    if not data.get("image"):
        return None
    return decision.Record(data["image"], data.get("digest") or None, data.get("packageDigest"))


def _condition(job: Object, type_: str) -> Object | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return dict(condition)
    return None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _attempt(kube: KubeClient, job: Object, model_deployment: str) -> decision.Attempt:
    meta = job["metadata"]
    number = int(meta.get("labels", {}).get(build_job.BUILD_ATTEMPT, "1"))
    reported = reported_annotation(model_deployment) in (meta.get("annotations") or {})
    pods = kube.list_pods(meta["namespace"], f"{JOB_NAME_LABEL}={meta['name']}")
    package_digest = _package_digest(pods)
    if _condition(job, "Complete") is not None:
        return decision.Attempt(
            number,
            meta["name"],
            "Succeeded",
            digest=_image_digest(pods),
            package_digest=package_digest,
        )
    failed = _condition(job, "Failed")
    if failed is None:
        return decision.Attempt(number, meta["name"], "Running", package_digest=package_digest)
    detail = _failure_detail(kube, pods) or failed.get("message") or ""
    return decision.Attempt(
        number,
        meta["name"],
        "Failed",
        reason=failed.get("reason") or "",
        finished_at=_time(failed.get("lastTransitionTime")),
        detail=detail,
        package_digest=package_digest,
        reported=reported,
    )


def _terminated(pod: Object, container: str) -> Object | None:
    status = pod.get("status") or {}
    for item in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        if item.get("name") == container:
            terminated = (item.get("state") or {}).get("terminated")
            return dict(terminated) if terminated else None
    return None


def _package_digest(pods: list[Object]) -> str | None:
    for pod in pods:
        message = (_terminated(pod, build_job.INIT_CONTAINER) or {}).get("message") or ""
        try:
            found = json.loads(message).get("packageDigest")
        except (ValueError, AttributeError):
            continue
        if isinstance(found, str):
            return found
    return None


def _image_digest(pods: list[Object]) -> str | None:
    for pod in pods:
        message = (_terminated(pod, build_job.BUILD_CONTAINER) or {}).get("message") or ""
        match = _DIGEST.search(message)
        if match:
            return match.group(0)
    return None


def _failure_detail(kube: KubeClient, pods: list[Object]) -> str:
    """The failing step's log tail; its termination message or reason when no log exists."""
    for pod in pods:
        for container in (build_job.INIT_CONTAINER, build_job.BUILD_CONTAINER):
            terminated = _terminated(pod, container)
            if terminated is None or int(terminated.get("exitCode") or 0) == 0:
                continue
            name = pod["metadata"]["name"]
            text = kube.pod_log_tail(pod["metadata"]["namespace"], name, container, LOG_LINES)
            if not text:
                text = terminated.get("message") or ""
            if not text:
                text = f"exit code {terminated.get('exitCode')} ({terminated.get('reason', '')})"
            return f"{container} step: {text.strip()}"
    return ""


def start(kube: KubeClient, job: Object) -> bool:
    """Create an attempt's Job; False when it exists already (another requester won)."""
    created = kube.create(job)
    if created:
        log.info("started build job %s/%s", job["metadata"]["namespace"], job["metadata"]["name"])
    return created


def write_record(kube: KubeClient, namespace: str, key: str, record: decision.Record) -> None:
    data = {"image": record.image, "buildKey": key}
    if record.digest:
        data["digest"] = record.digest
    if record.package_digest:
        data["packageDigest"] = record.package_digest
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": build_job.record_name(key),
                "namespace": namespace,
                "labels": {
                    labels.MANAGED_BY: "pitstop",
                    labels.ROLE: "build-record",
                    build_job.BUILD_KEY: key,
                },
            },
            "data": data,
        }
    )


def mark_reported(kube: KubeClient, namespace: str, job: str, model_deployment: str) -> None:
    kube.annotate(
        "batch/v1", "Job", namespace, job, {reported_annotation(model_deployment): "true"}
    )
