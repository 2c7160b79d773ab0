"""Notifications without a cluster: which transitions a pass made, the bodies, and
delivery with retries against a real local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import (
    AnalysisStatus,
    Condition,
    HistoryEntry,
    MetricResult,
    ModelDeploymentStatus,
    RevisionStatus,
)
from pitstop.notify import payload, sender, transitions
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import Event

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MD = ModelDeployment.from_object({
    "apiVersion": "pitstop.dev/v1alpha1", "kind": "ModelDeployment",
    "metadata": {"name": "fraud", "namespace": "ml", "uid": "u"},
    "spec": {"model": {"name": "fraud", "version": "8"}, "image": "r/fraud:8"},
})  # fmt: skip
CANDIDATE = RevisionStatus(revision="c8", version="8", image="r/fraud:8")
STABLE = RevisionStatus(revision="s7", version="7", image="r/fraud:7")
FAILED = MetricResult(name="error-rate", value=0.2, lower=0.11, upper=0.33, limit="<= 0.05",
                      verdict="Fail", requests=52)  # fmt: skip


def entry(outcome: str | None) -> HistoryEntry:
    return HistoryEntry.model_validate(
        {"revision": "c8", "version": "8", "image": "i", "startedAt": NOW, "outcome": outcome}
    )


def progressing(reason: str) -> list[Condition]:
    return [Condition(type="Progressing", status="True", reason=reason, message=f"{reason} now")]


def test_a_rollback_is_one_transition_naming_the_failing_metric() -> None:
    before = ModelDeploymentStatus(stable=STABLE, candidate=CANDIDATE, history=[entry(None)])
    after = ModelDeploymentStatus(
        stable=STABLE, history=[entry("RolledBack")],
        analysis=AnalysisStatus(revision="c8", metrics=[FAILED]),
    )  # fmt: skip
    (found,) = transitions.transitions(MD, before, after, [], NOW)
    assert (found.kind, found.version, found.stable_version) == ("RolledBack", "8", "7")
    assert found.metric == FAILED
    assert transitions.transitions(MD, after, after, [], NOW) == []  # told once


def test_started_and_step_advanced_come_from_events_held_from_its_turn() -> None:
    before = ModelDeploymentStatus(stable=STABLE, candidate=CANDIDATE)
    events = [Event("Normal", Reason.ROLLOUT_STARTED, "rolling out"),
              Event("Normal", Reason.STEP_ADVANCED, "step 2/3"),
              Event("Normal", Reason.SMOKE_TEST, "not told")]  # fmt: skip
    kinds = [t.kind for t in transitions.transitions(MD, before, before, events, NOW)]
    assert kinds == ["RolloutStarted", "StepAdvanced"]
    held = before.model_copy(update={"conditions": progressing(Reason.INSUFFICIENT_EVIDENCE)})
    (found,) = transitions.transitions(MD, before, held, [], NOW)
    assert (found.kind, found.message) == ("Held", "InsufficientEvidence now")
    assert transitions.transitions(MD, held, held, [], NOW) == []


def test_bodies_say_what_decided_it() -> None:
    before = ModelDeploymentStatus(stable=STABLE, candidate=CANDIDATE, history=[entry(None)])
    after = ModelDeploymentStatus(stable=STABLE, history=[entry("RolledBack")],
                                  analysis=AnalysisStatus(revision="c8", metrics=[FAILED]))  # fmt: skip
    (found,) = transitions.transitions(MD, before, after, [], NOW)
    body = payload.body(found, "JSON")
    json.dumps(body)  # serialisable as it is
    assert body["metric"] == {"name": "error-rate", "verdict": "Fail", "value": 0.2,
                              "stableValue": None, "lower": 0.11, "upper": 0.33,
                              "limit": "<= 0.05", "requests": 52}  # fmt: skip
    text = payload.body(found, "Slack")["text"]
    assert "ml/fraud" in text
    assert "version 8 rolled back" in text
    assert "error-rate 0.2, interval [0.11, 0.33], limit <= 0.05, 52 requests" in text


class Server:
    """Answers each POST with the next code of `codes` (then 200), recording bodies."""

    def __init__(self, codes: list[int]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.codes = list(codes)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                code = outer.codes.pop(0) if outer.codes else 200
                if code == 200:
                    outer.bodies.append(body)
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def notifier() -> Iterator[sender.Notifier]:
    found = sender.Notifier(backoff=0.05, attempts=3)
    yield found
    found.stop(grace=0.1)


def wait(what: str, probe: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rolled_back() -> list[transitions.Transition]:
    before = ModelDeploymentStatus(stable=STABLE, candidate=CANDIDATE, history=[entry(None)])
    after = ModelDeploymentStatus(stable=STABLE, history=[entry("RolledBack")])
    return transitions.transitions(MD, before, after, [], NOW)


def test_a_failing_endpoint_is_retried_with_backoff_until_it_answers(
    notifier: sender.Notifier,
) -> None:
    server = Server([503, 500])
    notifier.send([sender.Target(server.url)], rolled_back())
    wait("the third attempt delivered", lambda: server.bodies)
    assert [b["kind"] for b in server.bodies] == ["RolledBack"]
    server.server.shutdown()
    server.server.server_close()


def test_a_refused_request_is_not_retried_and_others_are_not_held_up(
    notifier: sender.Notifier,
) -> None:
    refusing, fine = Server([400, 400, 400]), Server([])
    notifier.send([sender.Target(refusing.url), sender.Target(fine.url)], rolled_back())
    wait("the good endpoint served", lambda: fine.bodies)
    assert refusing.codes == [400, 400]  # asked once, not three times
    for s in (refusing, fine):
        s.server.shutdown()
        s.server.server_close()


def test_only_the_transitions_a_target_asks_for_are_sent(notifier: sender.Notifier) -> None:
    server = Server([])
    events = [Event("Normal", Reason.ROLLOUT_STARTED, "rolling out")]
    started = transitions.transitions(MD, ModelDeploymentStatus(candidate=CANDIDATE),
                                      ModelDeploymentStatus(candidate=CANDIDATE), events, NOW)  # fmt: skip
    notifier.send([sender.Target(server.url, events=frozenset({"RolledBack"}))],
                  [*started, *rolled_back()])  # fmt: skip
    wait("the rollback delivered", lambda: server.bodies)
    notifier.stop(grace=1.0)
    assert [b["kind"] for b in server.bodies] == ["RolledBack"]
    server.server.shutdown()
    server.server.server_close()
