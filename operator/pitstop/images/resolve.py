"""Decide which image the spec's revision runs, and report it as the ImageBuilt condition.

With `spec.image` set, that image runs and nothing is built. Otherwise `resolve`
starts or observes the build of the spec's package (see `images.builds` for the Jobs
and records, `images.decision` for the retry policy) and returns the built image once
it exists. The strategy only ever sees the result: while there is no image, the
stable revision keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ConditionStatus
from pitstop.images import builds, decision, settings
from pitstop.k8s.client import KubeClient
from pitstop.rendering import build_job

IMAGE_PROVIDED = "ImageProvided"
BUILD_UNAVAILABLE = "BuildUnavailable"
BUILT = decision.BUILT
BUILDING = decision.BUILDING
BUILD_FAILED = decision.BUILD_FAILED
BUILD_TIMED_OUT = decision.BUILD_TIMED_OUT


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
    ns, name = md.metadata.namespace, md.metadata.name
    key = build_job.build_key(md, build_settings)
    record, attempts = builds.observe(kube, ns, key, name)
    step = decision.decide(build_job.image_ref(md, key), record, attempts, policy, now)
    if step.record is not None:
        builds.write_record(kube, ns, key, step.record)
    if step.start_attempt is not None:
        builds.start(kube, build_job.job(md, key, step.start_attempt, build_settings))
    owner = {"metadata": {"name": name, "namespace": ns, "uid": md.metadata.uid}}
    for failure in step.announce:
        kube.post_event(owner, "Warning", failure.reason, failure.message)
        builds.mark_reported(kube, ns, failure.job, name)
    outcome = step.outcome
    return ImageResult(
        outcome.image, outcome.status, outcome.reason, outcome.message, outcome.requeue_after
    )
