"""What the route renderers share: the split they render and which Services are ours.

The mesh providers (`httproute`, `virtualservice`) render route rules for a split of
traffic between a ModelDeployment's stable and candidate revisions. This module is
pure: it neither reads nor writes the cluster, and knows no provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from pitstop.rendering import labels

# children.revision_of: ten lowercase hex digits.
_REVISION = r"[0-9a-f]{10}"


class Split(Protocol):
    """A traffic split as the traffic layer holds it (`pitstop.traffic.provider.Split`).

    Declared here structurally so that the pure layer does not import the I/O layer.
    """

    @property
    def stable(self) -> str | None: ...
    @property
    def candidate(self) -> str | None: ...
    @property
    def weight(self) -> int: ...
    @property
    def mirror(self) -> int: ...


def serving(deployment: str, split: Split) -> str:
    """The Service users reach when nothing else is weighted: the stable revision's, or,
    with no stable (decommissioned), the entry Service, which then selects no pod: the
    route is back where a user's route starts, and answers that nothing serves."""
    if split.stable is None:
        return labels.entry_name(deployment)
    return labels.revision_name(deployment, split.stable)


def weights(deployment: str, split: Split) -> list[tuple[str, int]]:
    """(Service name, percent) for stable then candidate; no candidate, no second entry."""
    stable = serving(deployment, split)
    if split.candidate is None:
        return [(stable, 100)]
    candidate = labels.revision_name(deployment, split.candidate)
    return [(stable, 100 - split.weight), (candidate, split.weight)]


def mirror_target(deployment: str, split: Split) -> tuple[str, int] | None:
    """(candidate Service name, percent) when requests are mirrored, else None."""
    if split.candidate is None or split.mirror <= 0:
        return None
    return labels.revision_name(deployment, split.candidate), split.mirror


def is_own_service(deployment: str, service: str) -> bool:
    """Whether `service` is one Pitstop makes for `deployment`: its entry or a revision's."""
    if service == labels.entry_name(deployment):
        return True
    return re.fullmatch(re.escape(deployment) + "-" + _REVISION, service) is not None


def describe(entries: list[tuple[str, int]]) -> str:
    """`a=90, b=10` for messages a person reads."""
    return ", ".join(f"{name}={value}" for name, value in entries) or "nothing"


@dataclass(frozen=True)
class Comparison:
    """What a route in the cluster does against what a split wants.

    `differences` are sentences a person can act on (empty: in place); `weight` is the
    percent of user traffic that does not go to the stable revision, read from the
    first rule Pitstop manages (None when there is none).
    """

    differences: tuple[str, ...]
    weight: int | None


def share_off_stable(deployment: str, split: Split, entries: list[tuple[str, int]]) -> int | None:
    """Percent of `entries`' total weight that goes elsewhere than the stable revision."""
    total = sum(weight for _, weight in entries)
    if total <= 0:
        return None
    stable = serving(deployment, split)
    on_stable = sum(weight for name, weight in entries if name == stable)
    return round(100 * (total - on_stable) / total)
