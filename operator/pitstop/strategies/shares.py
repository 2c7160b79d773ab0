"""Traffic shares by pods: arithmetic the engine and the strategies share. Pure."""

from __future__ import annotations


def candidate_replicas(total: int, weight: int, by_replicas: bool) -> int:
    """Pods for the candidate. With exact weights it runs full size; with the `service`
    provider the share of pods *is* the weight: c / (total + c) ~ weight / 100."""
    if not by_replicas or weight >= 100:
        return total
    if weight <= 0:
        return 0
    return max(1, round(total * weight / (100 - weight)))


def effective_weight(total: int, weight: int, by_replicas: bool) -> int:
    """What users really get: exact, or the replica ratio for the service provider."""
    if not by_replicas or weight in (0, 100):
        return weight
    share = candidate_replicas(total, weight, True)
    return round(100 * share / (total + share))
