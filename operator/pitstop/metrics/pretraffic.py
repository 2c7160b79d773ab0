"""The checks a candidate meets before any user reaches it, in order: the smoke test,
the load test, the stress test (each optional). The first that has not passed is the
verdict the engine sees (`Observations.smoke`): Fail stops the rollout before any
traffic, Inconclusive waits (a test still running, no ready pod yet)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from pitstop.analysis import pretraffic
from pitstop.api import durations
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import AnalysisStatus, LoadResult, SmokeResult, StressResult
from pitstop.k8s.client import KubeClient
from pitstop.metrics import keys, loadtest, pods, smoke
from pitstop.metrics.builtin import Scraper, Unreadable
from pitstop.strategies.decision import Checks

log = logging.getLogger(__name__)


def check(
    scraper: Scraper, runner: loadtest.Runner, md: ModelDeployment,
    current: AnalysisStatus | None, revision: str, stable: str | None,
) -> tuple[AnalysisStatus | None, Checks | None]:  # fmt: skip
    spec, kube = md.spec.analysis, scraper.kube
    if spec.smoke_test is None and spec.load_test is None and spec.stress_test is None:
        return current, None
    if current is None or current.revision != revision:
        current = AnalysisStatus(revision=revision)
    if spec.smoke_test is not None:
        result = current.smoke if current.smoke and current.smoke.revision == revision else None
        if result is None:
            ran = smoke.run(kube, md, revision)
            if ran is None:
                return current, Checks("Inconclusive", "smoke test: waiting for a ready pod")
            result = SmokeResult(revision=revision, passed=ran[0], message=ran[1])
            current = current.model_copy(update={"smoke": result})
        if not result.passed:
            return current, Checks("Fail", f"smoke test: {result.message}")
    if spec.load_test is not None:
        loaded = current.load_test
        if loaded is None or loaded.revision != revision:
            measured = _load(kube, runner, md, revision)
            if isinstance(measured, str):
                return current, Checks("Inconclusive", measured)
            loaded = measured
            current = current.model_copy(update={"load_test": loaded})
        if not loaded.passed:
            return current, Checks("Fail", f"load test: {loaded.message}")
    if spec.stress_test is not None:
        stressed = current.stress
        if stressed is None or stressed.revision != revision:
            tried = _stress(scraper, runner, md, revision, stable)
            if isinstance(tried, str):
                return current, Checks("Inconclusive", tried)
            stressed = tried
            current = current.model_copy(update={"stress": stressed})
        if not stressed.passed:
            return current, Checks("Fail", f"stress test: {stressed.message}")
    return current, Checks("Pass", "checks before traffic passed")


def _ready(kube: KubeClient, md: ModelDeployment, revision: str) -> list[str]:
    return sorted(pods.ready_addresses(kube, md.metadata.namespace, md.metadata.name,
                                       revision).values())  # fmt: skip


def _load(
    kube: KubeClient, runner: loadtest.Runner, md: ModelDeployment, revision: str
) -> LoadResult | str:
    spec = md.spec.analysis.load_test
    assert spec is not None
    urls = _ready(kube, md, revision)
    if not urls:
        return "load test: waiting for a ready pod"
    headers = keys.headers(kube, md)
    seconds = durations.parse(spec.duration).total_seconds()

    def test() -> loadtest.Measured:
        rows = loadtest.rows_from(urls[0], headers)
        return loadtest.run(urls, rows, spec.requests_per_second, spec.concurrency, seconds,
                            headers)  # fmt: skip

    key = (md.metadata.namespace, md.metadata.name, revision, "load")
    measured = runner.poll(key, test)
    if measured is None:
        return (f"load test running: {spec.requests_per_second:g}/s for {spec.duration} on "
                f"{len(urls)} pod(s)")  # fmt: skip
    return pretraffic.load(revision, spec, measured.sent, measured.errors, measured.p99,
                           measured.rate)  # fmt: skip


def _stress(
    scraper: Scraper, runner: loadtest.Runner, md: ModelDeployment, revision: str,
    stable: str | None,
) -> StressResult | str:  # fmt: skip
    spec, kube = md.spec.analysis.stress_test, scraper.kube
    assert spec is not None
    urls = _ready(kube, md, revision)
    if not urls:
        return "stress test: waiting for a ready pod"
    headers = keys.headers(kube, md)
    stable_urls = _ready(kube, md, stable) if stable else []

    def test() -> tuple[loadtest.Ramp, float | None]:
        rows = loadtest.rows_from(urls[0], headers)
        before = _served(scraper, stable_urls, headers)
        started = time.monotonic()
        found = loadtest.ramp(
            urls[0], rows, start=spec.start_rate, factor=spec.factor,
            step=durations.parse(spec.step).total_seconds(), max_rate=spec.max_rate,
            max_p99=durations.parse(spec.max_p99).total_seconds(),
            max_error_rate=spec.max_error_rate, headers=headers,
        )  # fmt: skip
        after, elapsed = _served(scraper, stable_urls, headers), time.monotonic() - started
        rate = (after - before) / elapsed if before is not None and after is not None else None
        return found, rate

    key = (md.metadata.namespace, md.metadata.name, revision, "stress")
    done = runner.poll(key, test)
    if done is None:
        return f"stress test running on one pod of {revision}, from {spec.start_rate:g}/s up"
    found, stable_rate = done
    return pretraffic.stress(revision, spec, md.spec.serving.replicas, found.capacity,
                             found.p99, found.message, stable_rate)  # fmt: skip


def _served(scraper: Scraper, urls: list[str], headers: Mapping[str, str]) -> float | None:
    """Requests the pods at `urls` have answered so far, in all (their counters, read as
    the builtin metrics read them)."""
    if not urls:
        return None
    try:
        return sum(scraper.read(url, headers).requests for url in urls)
    except Unreadable as error:
        log.info("the stable's traffic is unknown: %s", error)
        return None
