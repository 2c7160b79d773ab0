"""What one revision's pods served between two looks: the deltas of their counters.

A pod seen for the first time contributes nothing yet (its counters become its
baseline: what it served before cannot be placed in time). A pod whose counters went
down, or whose server instance changed, restarted: everything it counted since then
belongs to this interval, as with Prometheus' increase(). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pitstop.analysis.samples import Labelled, PodCounters


@dataclass(frozen=True)
class Window:
    requests: float = 0.0
    errors: float = 0.0
    latency: Mapping[float, float] = field(default_factory=dict)
    """Answers per latency bucket, by upper bound in seconds."""
    bins: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    expected: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    agree: float = 0.0
    disagree: float = 0.0
    shadow_errors: float = 0.0
    quality: Labelled = field(default_factory=Labelled)
    shadow_quality: Labelled = field(default_factory=Labelled)
    package: Mapping[str, Any] | None = None
    """What the revision serves (package digest, data version), as a pod said."""
    pods: int = 0
    """Pods whose interval is counted (pods seen for the first time are not)."""

    @property
    def compared(self) -> float:
        """Mirrored predictions compared with production (shadow errors count as not agreeing)."""
        return self.agree + self.disagree + self.shadow_errors


def between(before: Mapping[str, PodCounters], after: Mapping[str, PodCounters]) -> Window:
    """The interval's totals over the pods in `after`, against their counters in `before`."""
    total = Window()
    for pod, now in after.items():
        old = before.get(pod)
        if old is None:
            continue
        total = _add(total, _delta(old, now))
    return total


def _restarted(old: PodCounters, new: PodCounters) -> bool:
    if old.instance is not None and new.instance is not None and old.instance != new.instance:
        return True
    return new.requests < old.requests or new.agree < old.agree


def _delta(old: PodCounters, new: PodCounters) -> Window:
    base = PodCounters() if _restarted(old, new) else old

    def minus(a: float, b: float) -> float:
        return max(0.0, a - b)

    bins = {
        name: tuple(
            minus(n, o) for n, o in zip(counts, _padded(base.bins.get(name), counts), strict=True)
        )
        for name, counts in new.bins.items()
    }
    return Window(
        requests=minus(new.requests, base.requests), errors=minus(new.errors, base.errors),
        latency={b: minus(n, base.latency.get(b, 0.0)) for b, n in new.latency.items()},
        bins=bins, expected=dict(new.expected),
        agree=minus(new.agree, base.agree), disagree=minus(new.disagree, base.disagree),
        shadow_errors=minus(new.shadow_errors, base.shadow_errors),
        quality=new.quality.minus(base.quality),
        shadow_quality=new.shadow_quality.minus(base.shadow_quality), package=new.package,
        pods=1,
    )  # fmt: skip


def _padded(old: tuple[float, ...] | None, like: tuple[float, ...]) -> tuple[float, ...]:
    if old is None or len(old) != len(like):
        return (0.0,) * len(like)
    return old


def _add(a: Window, b: Window) -> Window:
    latency = dict(a.latency)
    for bound, count in b.latency.items():
        latency[bound] = latency.get(bound, 0.0) + count
    bins = dict(a.bins)
    for name, counts in b.bins.items():
        mine = bins.get(name)
        bins[name] = (
            counts
            if mine is None or len(mine) != len(counts)
            else tuple(x + y for x, y in zip(mine, counts, strict=True))
        )
    return Window(
        requests=a.requests + b.requests, errors=a.errors + b.errors, latency=latency,
        bins=bins, expected={**a.expected, **b.expected},
        agree=a.agree + b.agree, disagree=a.disagree + b.disagree,
        shadow_errors=a.shadow_errors + b.shadow_errors,
        quality=a.quality.plus(b.quality), shadow_quality=a.shadow_quality.plus(b.shadow_quality),
        package=a.package or b.package, pods=a.pods + b.pods,
    )  # fmt: skip
