"""The traffic-provider interface and the values it works on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from pitstop.api.resource import ModelDeployment
from pitstop.strategies.decision import SetTraffic

# Capabilities a provider may declare.
WEIGHTS = "weights"  # split user traffic between stable and candidate by percent
MIRROR = "mirror"  # copy a percent of requests to the candidate, answers discarded
# Weights are realised as the candidate's share of pods, not as exact percentages.
WEIGHTS_BY_REPLICAS = "weights-by-replicas"


# The split a provider routes is exactly the engine's SetTraffic action: stable and
# candidate revisions, `weight`% answered by the candidate, `mirror`% copied to it.
Split = SetTraffic


@dataclass(frozen=True)
class Verification:
    """Whether what the provider wrote is in place; `weight` is what users really get."""

    ok: bool
    message: str = ""
    weight: int | None = None


class Provider(Protocol):
    """How one kind of traffic routing is driven. Implementations hold a KubeClient."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def problem(self, md: ModelDeployment) -> str | None:
        """Why this provider cannot route for `md` now (e.g. its route is missing), or None."""
        ...

    def unsupported(self, md: ModelDeployment, needs: frozenset[str]) -> str | None:
        """Why this provider cannot do `needs` for `md` where it routes (beyond what its
        `capabilities` say: e.g. a gateway whose implementation cannot mirror), or None.
        Routing goes on; a new rollout that needs it waits."""
        ...

    def apply(self, md: ModelDeployment, split: Split) -> None:
        """Make the cluster route as `split` says (idempotent)."""
        ...

    def verify(self, md: ModelDeployment, split: Split) -> Verification:
        """Read back what is in place and compare with `split`."""
        ...
