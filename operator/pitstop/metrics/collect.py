"""Gather what the judge needs for one ModelDeployment: candidate against stable.

`look` reads the builtin evidence (every analysis pass); `measure` queries PromQL and
webhooks (once per `analysis.interval`). Provider errors become explanations, never
exceptions: an unreachable provider leaves a metric inconclusive.
"""

from __future__ import annotations

from typing import Any

import httpx

from pitstop.analysis.judge import Counts, Look
from pitstop.analysis.threshold import Measurement
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import MetricSpec, PrometheusQuery
from pitstop.metrics import answers, keys, prometheus, webhook
from pitstop.metrics.builtin import Scraper, Unreadable


def look(
    scraper: Scraper, md: ModelDeployment, candidate: str, stable: str | None,
    purpose: str = "",
) -> tuple[Look | None, str | None]:  # fmt: skip
    """New builtin evidence since the last look, or None and why there is none."""
    revisions = (candidate, stable) if stable else (candidate,)
    try:
        auth = keys.headers(scraper.kube, md)
        windows = scraper.look(md.metadata.namespace, md.metadata.name, revisions, auth,
                               purpose)  # fmt: skip
    except (LookupError, Unreadable) as error:  # no key to present, or a pod unread
        return None, f"look skipped: {error}"
    mine, theirs = windows[candidate], windows.get(stable) if stable else None
    served = (
        mine.requests
        + mine.quality.rows
        + (
            theirs.requests + theirs.compared + theirs.quality.rows + theirs.shadow_quality.rows
            if theirs
            else 0.0
        )
    )  # feedback arrives late, without new requests
    if served <= 0:
        return None, None
    return Look(mine, theirs), None


def measure(
    md: ModelDeployment, candidate: str, stable: str | None
) -> tuple[dict[str, Counts], list[Measurement]]:
    """PromQL counts and values, webhook answers: one interval's measurements."""
    counts: dict[str, Counts] = {}
    values: list[Measurement] = []
    for metric in md.spec.analysis.metrics:
        query = metric.prometheus
        if query is not None and query.numerator is not None:
            counts[metric.name] = _counts(md, metric, query, candidate, stable)
        elif query is not None or metric.webhook is not None:
            try:
                values.append(_value(md, metric, candidate, stable))
            except (httpx.HTTPError, ValueError, KeyError) as error:
                values.append(Measurement(metric.name, None, error=answers.describe(error)))
    return counts, values


def _render(md: ModelDeployment, promql: str, revision: str) -> str:
    return prometheus.render(
        promql, name=md.metadata.name, namespace=md.metadata.namespace,
        revision=revision, interval=md.spec.analysis.interval,
    )  # fmt: skip


def _counts(
    md: ModelDeployment, metric: MetricSpec, query: PrometheusQuery, candidate: str,
    stable: str | None,
) -> Counts:  # fmt: skip
    assert query.numerator is not None
    assert query.denominator is not None
    address = query.address or prometheus.default_address()
    relative = metric.max_above_stable is not None or metric.max_ratio_to_stable is not None

    def pair(revision: str) -> tuple[float, float]:
        numerator = prometheus.query(address, _render(md, query.numerator or "", revision))
        denominator = prometheus.query(address, _render(md, query.denominator or "", revision))
        return numerator or 0.0, denominator or 0.0

    try:
        bad, total = pair(candidate)
        stable_bad, stable_total = pair(stable) if relative and stable else (None, None)
    except (httpx.HTTPError, ValueError, KeyError) as error:
        return Counts(error=answers.describe(error))
    return Counts(bad, total, stable_bad, stable_total)


def _value(
    md: ModelDeployment, metric: MetricSpec, candidate: str, stable: str | None
) -> Measurement:
    if metric.prometheus is not None:
        query = metric.prometheus
        assert query.query is not None
        address = query.address or prometheus.default_address()
        relative = metric.max_above_stable is not None or metric.max_ratio_to_stable is not None
        value = prometheus.query(address, _render(md, query.query, candidate))
        baseline = (
            prometheus.query(address, _render(md, query.query, stable))
            if relative and stable
            else None
        )
        return Measurement(metric.name, value, baseline)
    assert metric.webhook is not None
    context: dict[str, Any] = {
        "name": md.metadata.name, "namespace": md.metadata.namespace, "metric": metric.name,
        "candidate": candidate, "stable": stable, "version": md.spec.model.version,
    }  # fmt: skip
    passed, answer = webhook.ask(metric.webhook.url, context)
    return Measurement(metric.name, answer, passed=passed)
