"""Which image the spec's revision runs, reported as the ImageBuilt condition; the only
module of `images` that talks to the API.

With `spec.image` set, that image runs and nothing is built. Otherwise `resolve`
observes the build of the spec's package in the build namespace (its record, every
attempt's Job and pods, the requester's inputs), lets the pure `images.decision`
decide, and carries the decision out: write the record, start or launch an attempt,
announce failures. The strategy only ever sees the result: while there is no image,
the stable revision keeps serving.

A build is known by its key (`rendering.build_job.build_key`), not by who asks: its
Jobs and record live in the build namespace, so ModelDeployments of any namespace that
need the same package share one build, and a finished one is never built again.
Nothing is decided here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pitstop import telemetry
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ConditionStatus
from pitstop.images import decision, observation, settings
from pitstop.k8s.client import KubeClient
from pitstop.rendering import build_job, build_objects

log = logging.getLogger(__name__)
Object = dict[str, Any]

IMAGE_PROVIDED = "ImageProvided"
BUILD_UNAVAILABLE = decision.BUILD_UNAVAILABLE
BUILT = decision.BUILT
BUILDING = decision.BUILDING
BUILD_FAILED = decision.BUILD_FAILED
BUILD_TIMED_OUT = decision.BUILD_TIMED_OUT
BUILD_INPUT_MISSING = decision.BUILD_INPUT_MISSING
LOG_LINES = 400  # enough to reach the failing command's own error lines


@dataclass(frozen=True)
class ImageResult:
    """The image of the spec's revision (None while none exists) and how it came to be."""

    image: str | None
    status: ConditionStatus
    reason: str
    message: str
    requeue_after: float | None = None


def resolve(
    kube: KubeClient,
    md: ModelDeployment,
    now: datetime,
    build_settings: build_job.BuildSettings | None = None,
    policy: decision.Policy | None = None,
) -> ImageResult:
    if md.spec.image is not None:
        return ImageResult(md.spec.image, "True", IMAGE_PROVIDED, f"serving image {md.spec.image}")
    if md.spec.build is None or md.spec.model.source is None:  # the CRD refuses this
        return ImageResult(
            None, "False", BUILD_UNAVAILABLE,
            "spec.image is empty and spec.build or spec.model.source is missing",
        )  # fmt: skip
    build_settings = build_settings or settings.build_settings()
    policy = policy or settings.policy()
    key = build_job.build_key(md, build_settings)
    jobs, build = _observe(kube, md, key, build_settings)
    step = decision.decide(build, policy, now)
    _act(kube, md, key, build_settings, step, jobs)
    _count(build, step, jobs)
    outcome = step.outcome
    return ImageResult(
        outcome.image, outcome.status, outcome.reason, outcome.message, outcome.requeue_after
    )


# --- Observe -----------------------------------------------------------------------


def _observe(
    kube: KubeClient, md: ModelDeployment, key: str, build_settings: build_job.BuildSettings
) -> tuple[dict[str, Object], decision.Build]:
    """The build's Jobs by name, and what the decision needs to know about the build."""
    assert md.spec.build is not None
    ns = build_settings.namespace
    build = decision.Build(build_job.image_ref(md, key), md.spec.build.builder)
    found = kube.get_build_object("v1", "ConfigMap", ns, build_objects.record_name(key))
    record = observation.record(found)
    if record is not None:
        return {}, decision.Build(build.image, build.builder, record)
    jobs = kube.list_jobs(ns, build_job.key_selector(key))
    requester = (md.metadata.namespace, md.metadata.name)
    attempts = tuple(_attempt(kube, job, requester) for job in jobs)
    missing = _missing_inputs(kube, md, key, build_settings)
    by_name = {job["metadata"]["name"]: job for job in jobs}
    return by_name, decision.Build(build.image, build.builder, None, attempts, missing)


def _attempt(kube: KubeClient, job: Object, requester: tuple[str, str]) -> decision.Attempt:
    ns = job["metadata"]["namespace"]
    if observation.suspended(job):  # no pods yet; the copies it waits for
        sources = observation.secret_sources(job).values()
        return observation.attempt(job, [], requester, missing=_missing_secrets(kube, sources))
    pods = kube.list_build_pods(ns, observation.pods_selector(job))
    detail = ""
    if observation.failed(job):
        step = observation.failed_step(pods)
        tail = kube.pod_log_tail(ns, step.pod, step.container, LOG_LINES) if step else None
        detail = observation.failure_detail(step, tail)
    return observation.attempt(job, pods, requester, detail)


def _missing_secrets(kube: KubeClient, sources: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(
        f"Secret {ns}/{name}" for ns, name in sources if kube.get("v1", "Secret", ns, name) is None
    )


def _missing_inputs(
    kube: KubeClient, md: ModelDeployment, key: str, build_settings: build_job.BuildSettings
) -> tuple[str, ...]:
    """The requester's Secrets (copied into its attempts) and the claim of a `pvc` source,
    which build pods can only mount from the build namespace, where they run."""
    refs = build_job.secret_copies(md, key, 1).values()
    missing = _missing_secrets(
        kube, [(ref.partition("/")[0], ref.partition("/")[2]) for ref in refs]
    )
    source = md.spec.model.source
    if source is not None and source.pvc is not None:
        ns, claim = build_settings.namespace, source.pvc.claim_name
        if kube.get_build_object("v1", "PersistentVolumeClaim", ns, claim) is None:
            missing += (f"PersistentVolumeClaim {ns}/{claim} (build pods mount it there)",)
    return missing


# --- Act ---------------------------------------------------------------------------


def _act(
    kube: KubeClient,
    md: ModelDeployment,
    key: str,
    build_settings: build_job.BuildSettings,
    step: decision.BuildDecision,
    jobs: dict[str, Object],
) -> None:
    ns = build_settings.namespace
    if step.record is not None:
        data = observation.record_data(step.record)
        kube.apply_build_object(build_objects.record(ns, key, data))
    if step.start_attempt is not None:
        job = build_job.job(md, key, step.start_attempt, build_settings)
        if kube.create(job):
            log.info("started build job %s/%s", ns, job["metadata"]["name"])
            if observation.suspended(job):
                selector = build_job.attempt_selector(key, step.start_attempt)
                for created in kube.list_jobs(ns, selector):
                    _launch(kube, created)
    if step.launch is not None and step.launch in jobs:
        _launch(kube, jobs[step.launch])
    owner = {"metadata": {"name": md.metadata.name, "namespace": md.metadata.namespace,
                          "uid": md.metadata.uid}}  # fmt: skip
    reported = observation.reported_annotation(md.metadata.namespace, md.metadata.name)
    for failure in step.announce:
        kube.post_event(owner, "Warning", failure.reason, failure.message)
        value = f"{md.metadata.namespace}/{md.metadata.name}"
        kube.annotate("batch/v1", "Job", ns, failure.job, {reported: value})


def _count(build: decision.Build, step: decision.BuildDecision, jobs: dict[str, Object]) -> None:
    """Builds by outcome and duration, once each: a success when its record is first
    written, a failure when it is announced (to each ModelDeployment sharing the build)."""
    finished = {a.job: a for a in build.attempts if a.state in ("Succeeded", "Failed")}
    if step.record is not None:
        for attempt in finished.values():
            if attempt.state == "Succeeded":
                telemetry.build_finished("Succeeded", _took(attempt, jobs.get(attempt.job)))
    for failure in step.announce:
        failed = finished.get(failure.job)
        if failed is not None:
            telemetry.build_finished("Failed", _took(failed, jobs.get(failed.job)))


def _took(attempt: decision.Attempt, job: Object | None) -> float | None:
    started = observation.started(job) if job is not None else None
    if started is None or attempt.finished_at is None:
        return None
    return (attempt.finished_at - started).total_seconds()


def _launch(kube: KubeClient, job: Object) -> None:
    """Copy the Secrets a suspended attempt names into the build namespace, owned by its
    Job, then resume it. Each step is idempotent: an interrupted launch is finished by
    whichever requester observes the Job next."""
    meta = job["metadata"]
    for copy, (ns, name) in observation.secret_sources(job).items():
        source = kube.get("v1", "Secret", ns, name)
        if source is None:  # reported as missing by the next observation
            log.info("build job %s waits for Secret %s/%s", meta["name"], ns, name)
            return
        kube.create_secret_copy(build_objects.secret_copy(source, copy, job))
    kube.resume_job(meta["namespace"], meta["name"])
    log.info("launched build job %s/%s", meta["namespace"], meta["name"])
