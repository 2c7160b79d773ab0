"""The values that flow into and out of a strategy: observations, actions, decisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from pitstop.api.status import ModelDeploymentStatus


@dataclass(frozen=True)
class RevisionState:
    """What the API holds for one revision's Deployment."""

    replicas: int
    ready_replicas: int
    available: bool


@dataclass(frozen=True)
class Observations:
    """Everything a strategy may know about the world, gathered by the reconciler."""

    revision: str
    """The revision the current spec describes."""
    image: str | None
    """The image of that revision; None while none is known (not built yet)."""
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    """Revisions whose Deployments exist, by revision hash."""


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
class RouteEntry:
    """Point the entry Service at a revision."""

    revision: str


@dataclass(frozen=True)
class DeleteRevision:
    """Remove a revision's Deployment and Service."""

    revision: str


Action = EnsureRevision | ScaleRevision | RouteEntry | DeleteRevision


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
