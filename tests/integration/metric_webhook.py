"""A webhook metric whose answer the test sets: a real HTTP server on 127.0.0.1 that the
operator calls every analysis interval, and that remembers what it was asked (the
`webhook` fixture of conftest.py starts one per test)."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    """A check that passes until told otherwise, and remembers what it was asked."""

    def __init__(self) -> None:
        self.passing = True
        self.calls: list[dict[str, Any]] = []
        self._hold = threading.Event()  # the next call waits for `release`
        self.held = threading.Event()  # a call is waiting
        self._released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append(body)
                if outer._hold.is_set():
                    outer._hold.clear()
                    outer.held.set()
                    outer._released.wait(120)
                answer = json.dumps({"pass": outer.passing, "value": 0 if outer.passing else 1})
                with contextlib.suppress(OSError):  # a held caller may have given up
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(answer.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/check"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold_next(self) -> None:
        """Keep the next caller waiting for its answer (a reconcile stuck mid-pass)
        until `release`."""
        self._released.clear()
        self.held.clear()
        self._hold.set()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def analysis(url: str, **extra: Any) -> dict[str, Any]:
    """spec.analysis with the webhook as its only metric, checked every second."""
    return {"interval": "1s", "failureLimit": 1, "metrics": [{"name": "gate", "webhook": {"url": url}}],
            **extra}  # fmt: skip
