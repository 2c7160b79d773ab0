"""The values that flow into and out of a strategy: observations, actions, decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pitstop.api.status import ConditionStatus, ModelDeploymentStatus
from pitstop.strategies.requests import Request

Verdict = Literal["Pass", "Fail", "Inconclusive"]


@dataclass(frozen=True)
class PodTrouble:
    """Why a revision's pods are not ready, as the API tells it (see `trouble`)."""

    reason: str
    """A Reason constant naming the cause: PodsCrashLooping, ImagePullFailed, ..."""
    message: str
    """The pods' own words: "2/2 pods CrashLoopBackOff: back-off 40s restarting ..."."""


@dataclass(frozen=True)
class RevisionState:
    """What the API holds for one revision's Deployment."""

    replicas: int
    ready_replicas: int
    available: bool
    trouble: PodTrouble | None = None
    """Why pods are missing or not ready; looked up only for a revision short of them."""


@dataclass(frozen=True)
class ImageState:
    """The spec revision's image (None while none exists) and its ImageBuilt condition."""

    image: str | None
    status: ConditionStatus = "True"
    reason: str = "ImageProvided"
    message: str = ""


@dataclass(frozen=True)
class Traffic:
    """What the traffic provider can do and what it found in place."""

    weights_by_replicas: bool = False
    """The provider splits by replica ratio (the `service` provider), not by exact percent."""
    problem: str | None = None
    """Why the provider cannot route now (missing route, lacking capability), if so."""
    unsupported: str | None = None
    """Why the provider cannot do what the strategy needs where it routes (a gateway
    that cannot mirror): routing goes on, a new rollout waits."""
    verified: bool = True
    """The split recorded in status is in place."""
    message: str = ""


@dataclass(frozen=True)
class Checks:
    """The health verdict on the candidate (or on a just-promoted stable). None: no checks."""

    verdict: Verdict | None = None
    message: str = ""


@dataclass(frozen=True)
class Observations:
    """Everything a strategy may know about the world, gathered by the reconciler."""

    revision: str
    """The revision the current spec describes."""
    image: ImageState
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    """Revisions whose Deployments exist, by revision hash."""
    traffic: Traffic = field(default_factory=Traffic)
    checks: Checks = field(default_factory=Checks)
    smoke: Checks | None = None
    """The smoke test of a starting candidate; None when none is configured."""
    request: Request | None = None
    """A manual request (promote, abort, retry, undo, decommission) not handled yet."""


@dataclass(frozen=True)
class EnsureRevision:
    """Create or update the Deployment and Service of the spec's revision."""

    revision: str
    replicas: int


@dataclass(frozen=True)
class ScaleRevision:
    """Change only the replica count of an existing revision (its pods stay untouched)."""

    revision: str
    replicas: int


@dataclass(frozen=True)
class SetTraffic:
    """Route users: `weight`% to the candidate, `mirror`% copied to it, the rest to stable.

    `stable=None` (with no candidate) routes users to no model at all: a decommissioned
    ModelDeployment's entry Service selects no pod, and a route sends only to it."""

    stable: str | None
    candidate: str | None = None
    weight: int = 0
    mirror: int = 0


@dataclass(frozen=True)
class DeleteRevision:
    """Remove a revision's Deployment and Service."""

    revision: str


Action = EnsureRevision | ScaleRevision | SetTraffic | DeleteRevision


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What to do now, the status to write, and when to look again."""

    actions: tuple[Action, ...]
    status: ModelDeploymentStatus
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
