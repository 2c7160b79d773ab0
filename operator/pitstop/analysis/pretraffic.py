"""Verdicts of the load and stress tests a candidate meets before any user does. Pure:
the measurements arrive as numbers."""

from __future__ import annotations

from pitstop.api import durations
from pitstop.api.spec import LoadTestSpec, StressTestSpec
from pitstop.api.status import LoadResult, StressResult


def load(
    revision: str, spec: LoadTestSpec, sent: int, errors: int, p99: float | None, rate: float
) -> LoadResult:
    """The load test's result: the error rate and (when limited) the p99 against limits."""
    error_rate = errors / sent if sent else 1.0
    said = f"{sent} requests at {rate:.4g}/s: p99 {p99 or 0:.3f}s, {error_rate:.2%} errors"
    broken = []
    if not sent:
        broken.append("no request answered")
    if error_rate > spec.max_error_rate:
        broken.append(f"errors above {spec.max_error_rate:.2%}")
    if sent and rate < 0.9 * spec.requests_per_second:
        broken.append(f"it kept up with only {rate:.4g}/s of {spec.requests_per_second:g}/s")
    if spec.max_p99 is not None:
        limit = durations.parse(spec.max_p99).total_seconds()
        if p99 is None or p99 > limit:
            broken.append(f"p99 above {spec.max_p99}")
    message = said + (f" ({'; '.join(broken)})" if broken else "")
    return LoadResult(revision=revision, passed=not broken, message=message, p99=p99,
                      error_rate=error_rate, rate=rate)  # fmt: skip


def stress(
    revision: str, spec: StressTestSpec, replicas: int, capacity: float | None,
    p99: float | None, ramp: str, stable_rate: float | None,
) -> StressResult:  # fmt: skip
    """The stress test's result: the capacity per pod, and whether `replicas` pods of it
    carry the stable's current traffic with the headroom asked for."""
    passed, message = True, ramp
    if spec.require_capacity and stable_rate is not None and stable_rate > 0:
        carried = (capacity or 0.0) * replicas
        needed = stable_rate * spec.headroom
        if carried < needed:
            passed = False
            message = (f"{ramp}: {replicas} pod(s) carry {carried:.4g}/s, the stable serves "
                       f"{stable_rate:.4g}/s (x{spec.headroom:g} headroom: {needed:.4g}/s)")  # fmt: skip
    elif capacity is None:
        passed = False
    return StressResult(revision=revision, passed=passed, message=message, capacity=capacity,
                        p99=p99, stable_rate=stable_rate)  # fmt: skip
