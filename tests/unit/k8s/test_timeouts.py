"""Every API call gives up in time: an API server that accepts and never answers cannot
hang a reconcile.

The server is a real HTTP server on 127.0.0.1 that answers the discovery the facade
does when it is built (`/version`, `/api`, `/apis`, unless told to be silent there too)
and sits on every other request until the test ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client as k8s
from pitstop import telemetry
from pitstop.k8s import client

TIMEOUT = 0.2
WRITE_TIMEOUT = 0.1
# urllib3 may retry a read that timed out (three times by default), never more.
BOUND = 4 * TIMEOUT + 1.0


DISCOVERY = {
    "/version": {"major": "1", "minor": "36", "gitVersion": "v1.36.3"},
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
}


def serve(discovery: dict[str, Any]) -> Iterator[str]:
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.path in discovery:
                body = json.dumps(discovery[self.path])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())
                return
            released.wait(30)  # accepted, never answered

        do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    yield from serve(DISCOVERY)


@pytest.fixture
def silent_discovery() -> Iterator[str]:
    yield from serve({})


def facade(host: str) -> client.KubeClient:
    configuration = k8s.Configuration(host=host)
    return client.KubeClient(
        k8s.ApiClient(configuration), timeout=TIMEOUT, write_timeout=WRITE_TIMEOUT
    )


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda kube: kube.get_model_deployment("ml", "fraud"), id="get"),
        pytest.param(lambda kube: kube.list_deployments("ml", "a=b"), id="list"),
        pytest.param(lambda kube: kube.patch_status("ml", "fraud", {}, "1"), id="status write"),
        pytest.param(lambda kube: kube.scale_deployment("ml", "fraud-1", 0), id="scale"),
        pytest.param(lambda kube: kube.get("v1", "Service", "ml", "fraud"), id="dynamic get"),
    ],
)
def test_a_call_to_a_server_that_never_answers_gives_up(silent_server: str, call: Any) -> None:
    kube = facade(silent_server)
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)time"):  # urllib3's ReadTimeoutError, wrapped
        call(kube)
    assert time.monotonic() - started < BOUND


def test_building_the_facade_gives_up_when_discovery_never_answers(silent_discovery: str) -> None:
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)time"):
        facade(silent_discovery)
    assert time.monotonic() - started < BOUND


def test_a_call_that_gave_up_counts_as_unanswered_with_the_time_it_waited(
    silent_server: str,
) -> None:
    """The operator's /metrics say which requests a reconcile waited on, and for how long,
    answered or not (`pitstop_api_request_duration_seconds`)."""
    labels = {"verb": "PATCH", "resource": "modeldeployments/status"}

    def sample(name: str, **extra: str) -> float:
        return telemetry.REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    count = sample("pitstop_api_request_duration_seconds_count")
    waited = sample("pitstop_api_request_duration_seconds_sum")
    unanswered = sample("pitstop_api_requests_total", code="0")
    with pytest.raises(Exception, match=r"(?i)time"):
        facade(silent_server).patch_status("ml", "fraud", {}, "1")
    assert sample("pitstop_api_requests_total", code="0") > unanswered
    assert sample("pitstop_api_request_duration_seconds_count") > count
    # It gave up after its write timeout, at the earliest: that long is counted.
    assert sample("pitstop_api_request_duration_seconds_sum") - waited >= WRITE_TIMEOUT
