"""The load and stress runner against a real local HTTP server that takes a fixed time
per request, one at a time (a model server whose prediction dominates), and the
verdicts drawn from what it measures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pitstop.analysis import pretraffic
from pitstop.api.spec import LoadTestSpec, StressTestSpec
from pitstop.metrics import loadtest

ROWS = [{"amount": 1.0}]


class Serial:
    """Answers /predict after `seconds`, one request at a time; fails every `fail`-th."""

    def __init__(self, seconds: float, fail: int = 0) -> None:
        self.seconds, self.fail, self.count = seconds, fail, 0
        self.generated: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.generated.append(self.headers.get("X-Pitstop-Generated"))
                with outer.lock:  # one prediction at a time, however many connections
                    time.sleep(outer.seconds)
                    outer.count += 1
                    failing = outer.fail and outer.count % outer.fail == 0
                body = json.dumps({"predictions": [1]}).encode()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast() -> Iterator[Serial]:
    server = Serial(0.01)
    yield server
    server.close()


@pytest.fixture
def slow() -> Iterator[Serial]:
    server = Serial(0.1)
    yield server
    server.close()


def test_a_steady_load_counts_answers_errors_and_marks_itself_generated() -> None:
    server = Serial(0.0, fail=5)
    try:
        seen = loadtest.run([server.url], ROWS, rate=50, concurrency=4, seconds=1.0)
    finally:
        server.close()
    assert seen.sent == 50
    assert seen.errors == 10
    assert seen.error_rate == pytest.approx(0.2)
    assert set(server.generated) == {"1"}  # kept out of the model's drift evidence


def test_a_server_that_falls_behind_shows_it_in_the_p99(slow: Serial) -> None:
    # 100 ms a request, one at a time: at 20/s the queue grows, and latencies count from
    # when each request was due (an open loop), not from when a slot freed up.
    seen = loadtest.run([slow.url], ROWS, rate=20, concurrency=8, seconds=2.0)
    assert seen.p99 is not None
    assert seen.p99 > 0.3


def test_a_sender_that_lagged_is_not_taken_for_a_pod_that_fell_behind() -> None:
    """32/s asked, but a busy machine let the sender offer only 28/s, all answered at
    once: the pod kept up. Answering 20/s of 32/s sent is falling behind."""
    lagged = loadtest.Measured(sent=32, errors=0, p99=0.02, rate=27.5, offered=28.0)
    assert loadtest.breaks(lagged, 32.0, max_p99=0.5, max_error_rate=0.01) is None
    behind = loadtest.Measured(sent=32, errors=0, p99=0.2, rate=20.0, offered=32.0)
    why = loadtest.breaks(behind, 32.0, max_p99=0.5, max_error_rate=0.01)
    assert why == "only 20/s answered of 32/s sent"


def test_a_steady_load_reports_what_it_offered() -> None:
    server = Serial(0.0)
    try:
        seen = loadtest.run([server.url], ROWS, rate=20, concurrency=4, seconds=1.0)
    finally:
        server.close()
    assert 0 < seen.offered <= 20.5  # on schedule: 20 requests over one second


def test_the_ramp_finds_a_lower_capacity_for_a_slower_server(fast: Serial, slow: Serial) -> None:
    # Capacities 100/s and 10/s, ramped 4, 8, 16, 32/s: the slow server cannot answer
    # 16/s at all, the fast one is at most a third busy at 32/s. Limits this far from
    # both keep the ordering whatever else the machine is doing; the speed itself is the
    # capacity benchmark's to show (tests/benchmarks/capacity).
    limits = {"start": 4.0, "factor": 2.0, "step": 1.0, "max_rate": 32.0, "max_p99": 0.5,
              "max_error_rate": 0.01}  # fmt: skip
    quick = loadtest.ramp(fast.url, ROWS, **limits)
    sluggish = loadtest.ramp(slow.url, ROWS, **limits)
    assert quick.capacity == 32.0
    assert "the ramp's max" in quick.message
    assert sluggish.capacity is not None
    assert sluggish.capacity <= 1 / 0.1  # never above what it answers one at a time
    assert "sustains" in sluggish.message


def test_load_and_stress_verdicts() -> None:
    spec = LoadTestSpec(max_p99="100ms", max_error_rate=0.01)
    assert pretraffic.load("r", spec, 100, 0, 0.05, 20.0).passed
    slow = pretraffic.load("r", spec, 100, 0, 0.3, 20.0)
    assert not slow.passed
    assert "p99 above 100ms" in slow.message
    assert not pretraffic.load("r", spec, 100, 5, 0.05, 20.0).passed
    assert not pretraffic.load("r", spec, 0, 0, None, 0.0).passed
    behind = pretraffic.load("r", spec, 100, 0, 0.05, 12.0)  # 20/s asked
    assert not behind.passed
    assert "kept up with only 12/s" in behind.message

    stress = StressTestSpec(max_p99="100ms", headroom=1.2)
    carried = pretraffic.stress("r", stress, 2, 50.0, 0.08, "sustains 50/s", 80.0)
    assert carried.passed  # 2 x 50 >= 80 x 1.2
    short = pretraffic.stress("r", stress, 1, 50.0, 0.08, "sustains 50/s", 80.0)
    assert not short.passed
    assert "the stable serves 80/s" in short.message
    assert pretraffic.stress("r", stress, 1, 50.0, 0.08, "ok", None).passed  # no stable yet
