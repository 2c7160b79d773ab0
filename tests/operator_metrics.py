"""A running operator's own /metrics (`pitstop.telemetry`), read by tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterable

import local_http
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, dict[str, str], float]  # (name, labels, value)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def samples(url: str) -> list[Sample]:
    """Every sample the operator's /metrics at `url` shows now."""
    return parse(local_http.get(url, timeout=10).text)


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition (the operator's, the API server's)."""
    return [(s.name, s.labels, s.value)
            for f in text_string_to_metric_families(text) for s in f.samples]  # fmt: skip


def total(found: Iterable[Sample], name: str, /, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    return sum(v for n, ls, v in found if n == name and labels.items() <= ls.items())


def requests(
    found: Iterable[Sample], *, verbs: Iterable[str] | None = None, skip: Iterable[str] = ()
) -> dict[str, float]:
    """The operator's API requests so far by 'VERB resource': only `verbs` if given, none
    on the resources in `skip`."""
    wanted, skipped = (set(verbs) if verbs is not None else None), set(skip)
    by: dict[str, float] = {}
    for name, labels, value in found:
        if name != "pitstop_api_requests_total" or labels["resource"] in skipped:
            continue
        if wanted is None or labels["verb"] in wanted:
            key = f"{labels['verb']} {labels['resource']}"
            by[key] = by.get(key, 0.0) + value
    return by
