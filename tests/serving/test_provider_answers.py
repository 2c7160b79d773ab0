"""What a metric's provider says when it cannot answer, against a real Prometheus
(Debian's, on a free port) and a real HTTP webhook: Prometheus's own words for a query
it refuses, on one line, where users read a metric's reason (the analysis status, the
`Analysing` condition); a provider that is down, named with its address."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import local_http
import pytest
from pitstop.analysis import threshold
from pitstop.api.resource import ModelDeployment
from pitstop.metrics import collect
from serving_harness import free_port, wait_for

READY_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    url = f"http://127.0.0.1:{free_port()}"
    with (folder / "log").open("wb") as log:
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_ready(url, process, folder / "log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        assert process.poll() is None, log.read_text()[-2000:]
        return local_http.get(f"{url}/-/ready", timeout=1.0).status_code == 200

    wait_for(ready, READY_TIMEOUT, f"readiness of Prometheus at {url}")


@pytest.fixture
def refusing() -> Iterator[str]:
    """An address that refuses connections for the whole test: its port is bound, so no
    other process of a busy suite can take it, and not listening."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def md(*metrics: dict[str, Any]) -> ModelDeployment:
    return ModelDeployment.model_validate({
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1"},
        "spec": {"model": {"name": "fraud", "version": "7"}, "image": "r.example/fraud:7",
                 "analysis": {"metrics": list(metrics)}},
    })  # fmt: skip


def reasons(model: ModelDeployment) -> list[str]:
    """Each metric's reason as the analysis status says it (`threshold.judge`)."""
    counts, values = collect.measure(model, "cand", "stab")
    measured = {value.name: value for value in values}
    return [
        threshold.judge(metric, measured[metric.name], 0)[1] if metric.name in measured
        else f"{metric.name}: {counts[metric.name].error}"  # counts: the judge's own block
        for metric in model.spec.analysis.metrics
    ]  # fmt: skip


def test_a_query_prometheus_refuses_reads_as_prometheus_says_why(prometheus: str) -> None:
    said = reasons(
        md(
            {
                "name": "latency",
                "max": 1,
                "prometheus": {"address": prometheus, "query": "sum(rate(x[1m]"},
            }
        )
    )
    assert len(said) == 1
    assert "\n" not in said[0]
    assert said[0].startswith(f"latency: {prometheus}/api/v1/query answered 400 Bad Request: ")
    assert "parse error" in said[0]
    assert "unclosed left parenthesis" in said[0]
    assert "query=" not in said[0]
    assert "mozilla" not in said[0]


def test_counts_prometheus_refuses_read_the_same(prometheus: str) -> None:
    said = reasons(
        md(
            {
                "name": "errors",
                "max": 0.1,
                "prometheus": {
                    "address": prometheus,
                    "numerator": "sum(x{",
                    "denominator": "vector(1)",
                },
            }
        )
    )
    assert len(said) == 1
    assert "\n" not in said[0]
    assert said[0].startswith(f"errors: {prometheus}/api/v1/query answered 400 Bad Request: ")
    assert "parse error" in said[0]


def test_a_query_prometheus_answers_is_measured(prometheus: str) -> None:
    _, values = collect.measure(
        md({"name": "one", "max": 2, "prometheus": {"address": prometheus, "query": "vector(1)"}}),
        "cand",
        "stab",
    )
    assert values[0].error is None
    assert values[0].value == 1.0


def test_a_prometheus_that_is_down_is_named_with_its_address(refusing: str) -> None:
    address = refusing
    said = reasons(
        md({"name": "latency", "max": 1, "prometheus": {"address": address, "query": "vector(1)"}})
    )
    assert said == [
        f"latency: Prometheus at {address}: ConnectError: [Errno 111] Connection refused"
    ]


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(500)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_a_webhook_that_fails_is_named_without_its_query_string() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/judge"
        said = reasons(md({"name": "judge", "webhook": {"url": f"{url}?token=s3cr3t"}}))
    finally:
        server.shutdown()
        server.server_close()
    assert said == [f"judge: {url} answered 500 Internal Server Error"]


def test_a_webhook_that_is_down_is_named_without_its_query_string(refusing: str) -> None:
    url = f"{refusing}/judge"
    said = reasons(md({"name": "judge", "webhook": {"url": f"{url}?token=s3cr3t"}}))
    assert said == [f"judge: the webhook {url}: ConnectError: [Errno 111] Connection refused"]
