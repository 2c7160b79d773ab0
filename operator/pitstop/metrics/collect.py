"""Measure every metric of a spec for one interval: candidate against stable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from pitstop.analysis import window
from pitstop.analysis.verdict import Measurement
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import MetricSpec
from pitstop.metrics import prometheus, webhook
from pitstop.metrics.builtin import Scraper


def measure(
    scraper: Scraper, md: ModelDeployment, candidate: str, stable: str | None
) -> list[Measurement]:
    """One Measurement per metric; provider errors become inconclusive measurements."""
    ns, name = md.metadata.namespace, md.metadata.name
    windows: dict[str, window.Window | None] = {}
    if any(m.builtin for m in md.spec.analysis.metrics):
        windows["candidate"] = scraper.window(ns, name, candidate)
        windows["stable"] = scraper.window(ns, name, stable) if stable else None
    scraper.forget(ns, name, {r for r in (candidate, stable) if r})
    found = []
    for metric in md.spec.analysis.metrics:
        try:
            found.append(_one(md, metric, candidate, stable, windows))
        except (httpx.HTTPError, ValueError, KeyError) as error:
            found.append(Measurement(metric.name, None, error=f"{type(error).__name__}: {error}"))
    return found


def _one(
    md: ModelDeployment,
    metric: MetricSpec,
    candidate: str,
    stable: str | None,
    windows: dict[str, window.Window | None],
) -> Measurement:
    if metric.builtin is not None:
        return _builtin(
            metric.name, metric.builtin, windows.get("candidate"), windows.get("stable")
        )
    if metric.prometheus is not None:
        query = metric.prometheus
        relative = metric.max_above_stable is not None or metric.max_ratio_to_stable is not None

        def value(revision: str) -> float | None:
            promql = prometheus.render(
                query.query, name=md.metadata.name, namespace=md.metadata.namespace,
                revision=revision, interval=md.spec.analysis.interval,
            )  # fmt: skip
            return prometheus.query(query.address or prometheus.DEFAULT_ADDRESS, promql)

        baseline = value(stable) if relative and stable else None
        return Measurement(metric.name, value(candidate), baseline)
    assert metric.webhook is not None
    context: dict[str, Any] = {
        "name": md.metadata.name, "namespace": md.metadata.namespace, "metric": metric.name,
        "candidate": candidate, "stable": stable, "version": md.spec.model.version,
    }  # fmt: skip
    passed, answer = webhook.ask(metric.webhook.url, context)
    return Measurement(metric.name, answer, passed=passed)


def _builtin(
    name: str, kind: str, candidate: window.Window | None, stable: window.Window | None
) -> Measurement:
    if kind == "agreement":
        # Mirrored requests are compared on the stable's pods, which send the copies.
        if stable is None:
            return Measurement(name, None, error="no interval measured on the stable yet")
        compared = stable.agree + stable.disagree + stable.shadow_errors
        return Measurement(name, window.agreement(stable), requests=compared)
    if candidate is None:
        return Measurement(name, None, error="no interval measured yet")
    picks: dict[str, Callable[[window.Window], float | None]] = {
        "errorRate": window.error_rate,
        "latencyP99": lambda w: window.quantile(w, 0.99),
        "drift": lambda w: w.drift,
    }
    pick = picks[kind]
    return Measurement(
        name, pick(candidate), pick(stable) if stable is not None else None,
        requests=candidate.requests if kind != "drift" else None,
    )  # fmt: skip
