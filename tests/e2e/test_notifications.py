"""Notifications end to end (issue 13): a real HTTP receiver on 127.0.0.1 told of a real
canary's transitions by the operator on the chart's ServiceAccount — JSON to one
webhook, Slack's format to another whose URL is in a Secret, rollbacks only."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from harness import deployment, gateway, models

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10m"}]}}
ANALYSIS = {"metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}]}


class Receiver:
    """Records every POST: (path, JSON body)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        received = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, path: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            b for p, b in list(self.got) if p == path and (kind is None or b.get("kind") == kind)
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_a_rollback_is_told_once_with_its_metric_value_and_limit(
    md: deployment.Deployment, gateway_for: Start, receiver: Receiver
) -> None:
    md.cluster.kubectl("create", "secret", "generic", "slack", "-n", md.namespace,
                       f"--from-literal=url={receiver.url}/slack")  # fmt: skip
    notify = [
        {"url": f"{receiver.url}/json"},
        {"urlSecret": {"name": "slack", "key": "url"}, "format": "Slack", "events": ["RolledBack"]},
    ]
    md.apply(models.GOOD, CANARY, analysis=ANALYSIS, notify=notify)
    gateway_for(rps=20)
    md.healthy(models.GOOD)
    md.apply(models.FLAKY, CANARY, analysis=ANALYSIS, notify=notify)
    md.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    md.cluster.wait("the rollback told to both webhooks",
                    lambda: receiver.of("/json", "RolledBack") and receiver.of("/slack"))  # fmt: skip
    # One more transition, queued after anything a later pass could have sent again.
    md.apply(models.BETTER, CANARY, analysis=ANALYSIS, notify=notify)
    md.cluster.wait("the next rollout told", lambda: [
        b for b in receiver.of("/json", "RolloutStarted") if b["version"] == models.BETTER
    ])  # fmt: skip

    (rolled_back,) = receiver.of("/json", "RolledBack")
    assert (rolled_back["namespace"], rolled_back["name"]) == (md.namespace, "fraud")
    assert rolled_back["version"] == models.FLAKY
    assert rolled_back["stableVersion"] == models.GOOD
    metric = rolled_back["metric"]
    assert metric["name"] == "error-rate"
    assert metric["verdict"] == "Fail"
    assert metric["value"] > 0.05
    assert metric["limit"] == "<= 0.05"
    assert metric["lower"] > 0.05  # the interval sent agrees with the verdict
    started = [b["version"] for b in receiver.of("/json", "RolloutStarted")]
    assert started.count(models.FLAKY) == 1
    (slack,) = receiver.of("/slack")
    assert set(slack) == {"text"}
    assert "rolled back" in slack["text"]
    assert "error-rate" in slack["text"]
    assert "limit <= 0.05" in slack["text"]


def test_a_missing_url_secret_is_a_warning_event_not_a_stuck_rollout(
    md: deployment.Deployment, receiver: Receiver, kubelet_emulator: Any
) -> None:
    notify = [{"url": f"{receiver.url}/json"}, {"urlSecret": {"name": "absent", "key": "url"}}]
    md.apply(models.GOOD, CANARY, notify=notify)
    md.healthy(models.GOOD)
    md.apply(models.BETTER, CANARY, notify=notify)
    md.cluster.wait("the rollout told to the webhook that resolves",
                    lambda: receiver.of("/json", "RolloutStarted"))  # fmt: skip

    def warned() -> list[Any]:
        events = md.get("events", "--field-selector", "involvedObject.name=fraud")["items"]
        return [e for e in events if e["reason"] == "NotificationUnavailable"]

    (event, *_) = md.cluster.wait("a NotificationUnavailable Event", warned)
    assert "spec.notify[1].urlSecret" in event["message"]
    assert "absent" in event["message"]
