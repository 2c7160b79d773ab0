"""One interval's numbers for one revision, from two scrapes of its pods.

Rates come from counter deltas between scrapes. A pod that restarted (its counter went
down) or appeared since the last scrape contributes everything it counted since it
started, as Prometheus' `increase()` does for a reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pitstop.analysis.samples import PodCounters, Snapshot


@dataclass(frozen=True)
class Window:
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]
    drift: float | None
    agree: float
    disagree: float
    shadow_errors: float


def between(before: Snapshot, after: Snapshot) -> Window:
    total = Window(0.0, 0.0, (), None, 0.0, 0.0, 0.0)
    for pod, now in after.pods.items():
        total = _add(total, _delta(before.pods.get(pod), now))
    return total


def _delta(old: PodCounters | None, new: PodCounters) -> Window:
    reset = old is None or new.requests < old.requests or new.agree < old.agree
    base = PodCounters() if reset or old is None else old
    before = dict(base.buckets)
    return Window(
        requests=new.requests - base.requests,
        errors=max(0.0, new.errors - base.errors),
        buckets=tuple((le, max(0.0, n - before.get(le, 0.0))) for le, n in new.buckets),
        drift=new.drift,
        agree=new.agree - base.agree,
        disagree=max(0.0, new.disagree - base.disagree),
        shadow_errors=max(0.0, new.shadow_errors - base.shadow_errors),
    )


def _add(a: Window, b: Window) -> Window:
    buckets = dict(a.buckets)
    for le, n in b.buckets:
        buckets[le] = buckets.get(le, 0.0) + n
    drifts = [d for d in (a.drift, b.drift) if d is not None]
    return Window(
        requests=a.requests + b.requests, errors=a.errors + b.errors,
        buckets=tuple(sorted(buckets.items())), drift=max(drifts) if drifts else None,
        agree=a.agree + b.agree, disagree=a.disagree + b.disagree,
        shadow_errors=a.shadow_errors + b.shadow_errors,
    )  # fmt: skip


def error_rate(w: Window) -> float | None:
    return w.errors / w.requests if w.requests > 0 else None


def quantile(w: Window, q: float) -> float | None:
    """The q-quantile from histogram buckets, interpolated as `histogram_quantile` does."""
    if not w.buckets or w.buckets[-1][1] <= 0:
        return None
    rank = q * w.buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in w.buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the tail is beyond the largest finite bucket
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def agreement(w: Window) -> float | None:
    """Share of compared predictions that matched production (shadow errors count as not)."""
    compared = w.agree + w.disagree + w.shadow_errors
    return w.agree / compared if compared > 0 else None
