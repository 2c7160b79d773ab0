"""A real HTTP server on a KWOK pod's IP answering GET /evidence with what a test says:
the operator's own code finds the pod through the API and reads it as it reads a model
server, without a model server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pitstop.rendering import labels


class EvidenceServer:
    """Answers each GET with `evidence()` as JSON; None from it is a 503."""

    def __init__(self, ip: str, evidence: Callable[[], dict[str, Any] | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = evidence()
                if found is None:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(found).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((ip, labels.SERVING_PORT), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
