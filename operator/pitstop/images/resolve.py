"""Decide which image the spec's revision runs, and report it as the ImageBuilt condition.

Today only prebuilt images (`spec.image`) are supported; in-cluster builds plug in
here: `resolve` then starts or observes the build Job and returns the built image once
it exists. The strategy only ever sees the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ConditionStatus
from pitstop.k8s.client import KubeClient

IMAGE_PROVIDED = "ImageProvided"
BUILD_UNAVAILABLE = "BuildUnavailable"


@dataclass(frozen=True)
class ImageResult:
    """The image of the spec's revision (None while none exists) and how it came to be."""

    image: str | None
    status: ConditionStatus
    reason: str
    message: str
    requeue_after: float | None = None


def resolve(kube: KubeClient, md: ModelDeployment, now: datetime) -> ImageResult:
    if md.spec.image is not None:
        return ImageResult(md.spec.image, "True", IMAGE_PROVIDED, f"serving image {md.spec.image}")
    return ImageResult(
        None,
        "False",
        BUILD_UNAVAILABLE,
        "spec.image is empty and in-cluster image builds are not available in this version "
        "of Pitstop; set spec.image to a prebuilt serving image",
    )
