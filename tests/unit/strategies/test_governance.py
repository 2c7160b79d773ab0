"""The governance trail and spec.approval, as tables of (status, request) -> record.

Each manual request is recorded, with who asked, when it was handled, why and how it
ended, on the history entry of the revision it concerns; a candidate carries its
requests until its rollout ends. With `approval: Required` a candidate that passed
waits for `pitstop promote` before it takes all traffic; a failing one still rolls back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ManualRequest, ModelDeploymentStatus
from pitstop.strategies import audit, conditions, engine, requests
from pitstop.strategies.decision import Checks, Decision, SetTraffic
from pitstop.strategies.requests import Request
from test_engine import EARLIER, NOW, STABLE, STEPS, cand, history, md, rev, seen, up

BOTH = {"old": up(), "new": up()}


def again(model: ModelDeployment, decision: Decision) -> ModelDeployment:
    """The same ModelDeployment with the status `decision` wrote."""
    return model.model_copy(update={"status": decision.status})


def asked(status: ModelDeploymentStatus) -> dict[str, list[tuple[str, str, str]]]:
    """(action, by, result) of every recorded request, by where it is kept."""
    found = {f"history[{i}] {h.revision}": [(q.action, q.by, q.result) for q in h.requests or []]
             for i, h in enumerate(status.history)}  # fmt: skip
    if status.candidate is not None:
        found["candidate"] = [(q.action, q.by, q.result) for q in status.candidate.requests or []]
    return {where: records for where, records in found.items() if records}


def test_a_promote_rides_on_the_candidate_and_lands_in_its_history_entry() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)})
    request = Request("promote", "p1", reason="dashboards look fine", by="alice")
    first = engine.decide(model, seen(BOTH, request=request), NOW)
    assert first.status.candidate is not None
    (record,) = first.status.candidate.requests or []
    assert record == ManualRequest(action="promote", id="p1", by="alice", at=NOW,
                                   reason="dashboards look fine", result="Done")  # fmt: skip
    promoted = engine.decide(
        again(model, first), seen(BOTH, request=Request("promote", "p2", by="bob")), NOW
    )
    assert promoted.status.phase == "Healthy"
    assert asked(promoted.status) == {
        "history[1] new": [("promote", "alice", "Done"), ("promote", "bob", "Done")]
    }
    assert promoted.status.stable is not None
    assert promoted.status.stable.requests is None  # they live in the history now
    messages = [e.message for e in first.events if e.reason == "PromoteRequested"]
    assert messages == ["promote of revision new asked (by alice: dashboards look fine)"]


CASES = [
    ("abort: on the aborted candidate's entry",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)}), Request("abort", "a", by="carol"),
     {"history[1] new": [("abort", "carol", "Done")]}),
    ("promote with nothing rolling out: refused, on the newest entry",
     md(STEPS, {"stable": rev("new", "7"), "history": history(("new", "Promoted", None))}),
     Request("promote", "p", by="dave"), {"history[0] new": [("promote", "dave", "Refused")]}),
    ("retry: on the rejected revision's entry",
     md(STEPS, {**STABLE, "rejectedRevision": "new", "history": [*STABLE["history"],
        *history(("new", "RolledBack", EARLIER))]}),
     Request("retry", "r", by="erin"), {"history[1] new": [("retry", "erin", "Done")]}),
    ("undo: on the target, which carries it while it comes back",
     md(STEPS, {"stable": rev("new", "7"), "history": history(
         ("older", "Retired", EARLIER), ("new", "Promoted", None))}),
     Request("undo", "u", "older", by="frank"), {"candidate": [("undo", "frank", "Done")]}),
    ("undo to the serving revision: refused, on its entry",
     md(STEPS, {"stable": rev("new", "7"), "history": history(
         ("older", "Retired", EARLIER), ("new", "Promoted", None))}),
     Request("undo", "u", "new", by="gina"), {"history[1] new": [("undo", "gina", "Refused")]}),
    ("no requested-by (policy off): recorded as unknown",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)}), Request("abort", "a"),
     {"history[1] new": [("abort", requests.UNKNOWN_USER, "Done")]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "request_", "recorded"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_each_request_is_recorded_where_its_revision_is(
    model: ModelDeployment, request_: Request, recorded: dict[str, list[tuple[str, str, str]]]
) -> None:
    world = {"old": up(), "new": up(), "older": up(0)}
    decision = engine.decide(model, seen(world, request=request_), NOW)
    assert asked(decision.status) == recorded
    assert decision.status.last_request == request_.id


def test_a_refusal_is_recorded_with_its_reason_and_told_with_its_user() -> None:
    model = md(STEPS, {"stable": rev("new", "7"), "history": history(("new", "Promoted", None))})
    request = Request("abort", "a1", reason="it is slow", by="alice")
    decision = engine.decide(model, seen({"new": up()}, request=request), NOW)
    (record,) = decision.status.history[0].requests or []
    assert (record.result, record.message, record.reason) == (
        "Refused", "abort asked, but no rollout is in progress", "it is slow"
    )  # fmt: skip
    assert [(e.type, e.message) for e in decision.events] == [
        ("Warning", "abort asked, but no rollout is in progress (by alice: it is slow)")
    ]


def test_the_records_of_an_entry_are_capped() -> None:
    model = md(STEPS, {"stable": rev("new", "7"), "history": history(("new", "Promoted", None))})
    for n in range(audit.KEPT + 5):
        request = Request("promote", f"p{n}", by="alice")
        model = again(model, engine.decide(model, seen({"new": up()}, request=request), NOW))
    kept = model.status.history[0].requests or []
    assert [q.id for q in kept] == [f"p{n}" for n in range(5, audit.KEPT + 5)]


# --- spec.approval: Required

LAST_STEP = {**STABLE, "candidate": cand("Canary", step=1)}
PAUSED_STEPS = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "1m"},
                                                        {"weight": 50, "pause": "1m"}]}}  # fmt: skip
PASSING = Checks("Pass", "every metric passed")


@pytest.mark.parametrize(
    ("strategy", "status"),
    [
        pytest.param(PAUSED_STEPS, LAST_STEP, id="canary: at its last step"),
        pytest.param({"type": "BlueGreen"}, {**STABLE, "candidate": cand("Preview")},
                     id="blue/green: before the switch"),
        pytest.param({"type": "Shadow", "shadow": {"duration": "1m"}},
                     {**STABLE, "candidate": cand("Shadow")}, id="shadow: before the switch"),
    ],
)  # fmt: skip
def test_approval_required_holds_a_passing_candidate_until_promote(
    strategy: dict[str, Any], status: dict[str, Any]
) -> None:
    model = md(strategy, status, approval="Required")
    held = engine.decide(model, seen(BOTH, checks=PASSING), NOW)
    assert held.status.phase == "Paused"
    assert held.status.stable is not None
    assert held.status.stable.revision == "old"
    paused = conditions.find(held.status.conditions, conditions.PAUSED)
    assert paused is not None
    assert paused.reason == "AwaitingApproval"
    assert "waiting for approval: `pitstop promote fraud`" in held.status.message
    again_held = engine.decide(again(model, held), seen(BOTH, checks=PASSING), NOW)
    assert again_held.status.phase == "Paused"
    request = Request("promote", "ok", reason="reviewed", by="alice")
    done = engine.decide(again(model, again_held), seen(BOTH, checks=PASSING, request=request), NOW)
    assert done.status.phase == "Healthy"
    assert done.status.stable is not None
    assert done.status.stable.revision == "new"
    assert SetTraffic("new") in done.actions
    assert asked(done.status) == {"history[1] new": [("promote", "alice", "Done")]}


def test_automatic_approval_promotes_a_passing_canary_by_itself() -> None:
    decision = engine.decide(md(PAUSED_STEPS, LAST_STEP), seen(BOTH, checks=PASSING), NOW)
    assert decision.status.phase == "Healthy"


def test_approval_required_does_not_hold_earlier_steps() -> None:
    model = md(PAUSED_STEPS, {**STABLE, "candidate": cand("Canary", step=0)}, approval="Required")
    decision = engine.decide(model, seen(BOTH, checks=PASSING), NOW)
    assert decision.status.candidate is not None
    assert decision.status.candidate.step == 1
    assert decision.status.phase == "Progressing"


def test_a_failing_candidate_rolls_back_without_approval() -> None:
    model = md(PAUSED_STEPS, LAST_STEP, approval="Required")
    held = engine.decide(model, seen(BOTH, checks=PASSING), NOW)
    assert held.status.phase == "Paused"
    failing = Checks("Fail", "error-rate 0.2 > 0.01")
    later = NOW + timedelta(seconds=30)
    decision = engine.decide(again(model, held), seen(BOTH, checks=failing), later)
    assert decision.status.phase == "RolledBack"
    assert decision.status.candidate is None
    assert decision.status.history[-1].outcome == "RolledBack"
    assert SetTraffic("old") in decision.actions


def test_request_parsing_reads_who_from_its_own_annotation() -> None:
    request = Request("promote", "p", reason="why not")
    found = requests.parse(request.annotations("alice"))
    assert found == Request("promote", "p", reason="why not", by="alice")


def test_a_parsed_reason_is_cut_to_its_limit() -> None:
    long = Request("abort", "a", reason="x" * 500).to_annotation()
    found = requests.parse({requests.ANNOTATION: long})
    assert isinstance(found, Request)
    assert len(found.reason) == requests.MAX_REASON
    assert found.by is None


def test_a_reason_that_is_not_text_is_malformed() -> None:
    message = requests.parse({requests.ANNOTATION: '{"action": "abort", "id": "a", "reason": 3}'})
    assert isinstance(message, str)
    assert "reason" in message
