"""`pitstop status` shows the rollout from the status alone."""

from __future__ import annotations

from pitstop import view
from rich.console import Console

OBJ = {
    "metadata": {"name": "fraud"},
    "status": {
        "phase": "Progressing",
        "message": "step 1/2: 10% of traffic to revision bbb",
        "stable": {"revision": "aaa", "version": "1"},
        "candidate": {"revision": "bbb", "version": "2", "state": "Canary", "step": 0},
        "traffic": {"summary": "90% / 10%"},
        "analysis": {"generated": 1200, "metrics": [
            {"name": "errors", "value": 0.2, "stableValue": 0.001, "limit": "<= 0.01", "verdict": "Fail",
             "lower": 0.12, "upper": 0.31, "requests": 180},
            {"name": "p99", "value": 0.012, "stableValue": 0.011, "lower": 0.8, "upper": None,
             "limit": "<= 1.2 x stable", "verdict": "Inconclusive", "needs": 4200}]},
        "history": [{"revision": "aaa", "version": "1", "outcome": "Promoted", "reason": "first revision"}],
    },
}  # fmt: skip


def test_render_shows_revisions_step_traffic_metrics_and_history() -> None:
    console = Console(record=True, width=120)
    console.print(view.render(OBJ))
    text = console.export_text()
    for expected in ("fraud", "Progressing", "90% / 10%", "v1 (aaa)", "v2 (bbb)", "Canary step 1",
                     "errors", "0.2", "<= 0.01", "Fail", "first revision", "[0.12, 0.31]",
                     "[0.8, ...]", "needs ~4,200 more", "1,200 generated"):  # fmt: skip
        assert expected in text


def test_render_shows_the_last_manual_requests_who_what_when_why() -> None:
    asked = {"action": "promote", "id": "r1", "by": "alice", "at": "2026-11-26T12:00:00Z",
             "reason": "looks good on the dashboard", "result": "Done"}  # fmt: skip
    refused = {"action": "retry", "id": "r0", "by": "bob", "at": "2026-11-26T11:00:00Z",
               "result": "Refused", "message": "retry asked, but no revision was rejected"}  # fmt: skip
    status = dict(OBJ["status"])  # type: ignore[arg-type]
    status["history"] = [{**status["history"][0], "requests": [refused]}]
    status["candidate"] = {**status["candidate"], "requests": [asked]}
    console = Console(record=True, width=200)
    console.print(view.render({**OBJ, "status": status}))
    text = console.export_text()
    assert "manual requests" in text
    assert text.index("retry aaa") < text.index("promote bbb")  # oldest first
    for expected in ("alice", "looks good on the dashboard", "Done", "bob", "Refused",
                     "no revision was rejected", "2026-11-26T12:00:00Z"):  # fmt: skip
        assert expected in text
