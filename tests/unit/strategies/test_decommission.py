"""`pitstop decommission` in the engine: (status, request, what the API holds) -> decision.

The request ends every revision's service in its own pass (so the archive records
them), routes users to no model, and only a later pass, once the provider reads that
routing back, deletes the revisions. From then on nothing comes back, whatever the spec
says, until the ModelDeployment is deleted.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ModelDeploymentStatus
from pitstop.archive import records as archive
from pitstop.strategies import conditions, engine, phase
from pitstop.strategies.decision import (
    Decision,
    DeleteRevision,
    EnsureRevision,
    ScaleRevision,
    SetTraffic,
    Traffic,
)
from pitstop.strategies.requests import Request
from test_engine import EARLIER, NOW, STABLE, STEPS, cand, history, md, rev, seen, up

REQUEST = Request("decommission", "d1", reason="replaced by the v3 model", by="alice")
REASON = "decommissioned by alice: replaced by the v3 model"
PAUSED_CANARY = md(STEPS, {**STABLE, "candidate": cand("Canary", step=1)})
BOTH = {"old": up(), "new": up()}


def again(before: ModelDeployment, decision: Decision, **spec: object) -> ModelDeployment:
    """The same ModelDeployment with the status `decision` wrote (and a spec changed)."""
    body = before.spec.model_dump(by_alias=True, exclude_none=True)
    body.update(spec)
    return ModelDeployment.model_validate(
        {"metadata": before.metadata.model_dump(by_alias=True), "spec": body,
         "status": decision.status.model_dump(by_alias=True)}
    )  # fmt: skip


def ended(status: ModelDeploymentStatus) -> list[tuple[str, str | None, str]]:
    return [(h.revision, h.outcome, h.reason) for h in status.history if h.ended_at == NOW]


def test_the_request_ends_every_revision_and_takes_traffic_off_first() -> None:
    first = engine.decide(PAUSED_CANARY, seen(BOTH, request=REQUEST), NOW)
    status = first.status
    assert ended(status) == [("old", "Retired", REASON), ("new", "Aborted", REASON)]
    assert (status.stable, status.candidate, status.previous) == (None, None, None)
    assert status.decommissioned is not None
    assert (status.decommissioned.by, status.decommissioned.request) == ("alice", "d1")
    assert status.decommissioned.completed_at is None
    # Traffic off, committed with the status; nothing deleted before it is read back.
    assert first.actions == (SetTraffic(stable=None),)
    assert status.phase == "Decommissioned"
    assert (status.traffic.stable, status.traffic.candidate, status.traffic.summary) == (
        0, 0, "none"
    )  # fmt: skip
    assert status.rejected_revision is None
    reconciling = conditions.find(status.conditions, "Reconciling")
    assert reconciling is not None
    assert reconciling.status == "True"  # Flux waits while revisions go
    assert first.requeue_after is not None


def test_the_archive_gets_each_ended_revision_with_who_asked() -> None:
    first = engine.decide(PAUSED_CANARY, seen(BOTH, request=REQUEST), NOW)
    found = archive.newly_ended(PAUSED_CANARY.status, first.status)
    assert [(e.revision, e.outcome) for e in found] == [("old", "Retired"), ("new", "Aborted")]
    for entry in found:
        (request,) = entry.requests or []
        assert (request.action, request.by, request.reason, request.result) == (
            "decommission", "alice", "replaced by the v3 model", "Done"
        )  # fmt: skip


def test_revisions_are_deleted_once_the_provider_shows_no_traffic() -> None:
    first = engine.decide(PAUSED_CANARY, seen(BOTH, request=REQUEST), NOW)
    model = again(PAUSED_CANARY, first)
    assert engine.current_split(model) == SetTraffic(stable=None)

    unverified = Traffic(verified=False, message="Service fraud does not select none yet")
    waiting = engine.decide(model, seen(BOTH, traffic=unverified), NOW)
    assert waiting.actions == (SetTraffic(stable=None),)
    assert "taking traffic off revision new, old" in waiting.status.message

    draining = engine.decide(model, seen(BOTH), NOW)
    assert draining.actions == (
        SetTraffic(stable=None), DeleteRevision("new"), DeleteRevision("old")
    )  # fmt: skip
    assert draining.status.decommissioned is not None
    assert draining.status.decommissioned.completed_at is None

    later = NOW + timedelta(seconds=5)
    done = engine.decide(again(model, draining), seen({}), later)
    assert done.actions == (SetTraffic(stable=None),)
    assert done.status.decommissioned is not None
    assert done.status.decommissioned.completed_at == later
    assert done.requeue_after is None  # settled: nothing to look at until it changes
    assert "delete the ModelDeployment" in done.status.message
    assert [(c.type, c.status) for c in done.status.conditions
            if c.type in ("Reconciling", "Stalled", "Ready")] == [
        ("Ready", "False"), ("Reconciling", "False"), ("Stalled", "False")
    ]  # fmt: skip


def test_a_missing_route_has_nothing_to_drain_through() -> None:
    first = engine.decide(PAUSED_CANARY, seen(BOTH, request=REQUEST), NOW)
    gone = Traffic(verified=False, problem="HTTPRoute ml/fraud does not exist")
    decision = engine.decide(again(PAUSED_CANARY, first), seen(BOTH, traffic=gone), NOW)
    assert DeleteRevision("old") in decision.actions
    assert not any(isinstance(a, SetTraffic) for a in decision.actions)


@pytest.mark.parametrize("version", ["7", "8"])
def test_a_spec_change_does_not_bring_pods_back(version: str) -> None:
    """The spec still describes a revision (or a new one): nothing is ensured or scaled."""
    first = engine.decide(PAUSED_CANARY, seen(BOTH, request=REQUEST), NOW)
    drained = again(PAUSED_CANARY, first, model={"name": "fraud", "version": version})
    decision = engine.decide(drained, seen({}), NOW + timedelta(minutes=1))
    assert not any(isinstance(a, EnsureRevision | ScaleRevision) for a in decision.actions)
    assert decision.status.phase == "Decommissioned"
    assert decision.status.stable is None
    assert decision.status.observed_generation == drained.metadata.generation


def test_other_requests_and_a_second_decommission_are_refused() -> None:
    first = engine.decide(PAUSED_CANARY, seen(BOTH, request=REQUEST), NOW)
    model = again(PAUSED_CANARY, first)
    for request in (Request("decommission", "d2", by="bob"), Request("undo", "u", "old")):
        decision = engine.decide(model, seen(BOTH, request=request), NOW)
        assert decision.status.decommissioned == first.status.decommissioned
        assert decision.status.stable is None
        assert [e.reason for e in decision.events] == ["InvalidRequest"]


def test_a_previous_stable_in_its_window_goes_too() -> None:
    model = md(STEPS, {
        "stable": rev("new", "7"), "previous": rev("old", until=NOW + timedelta(minutes=5)),
        "history": history(("old", "Retired", EARLIER), ("new", "Promoted", None))})  # fmt: skip
    first = engine.decide(model, seen(BOTH, request=REQUEST), NOW)
    assert first.status.previous is None
    assert ended(first.status) == [("new", "Retired", REASON)]  # old ended at promotion
    drained = engine.decide(again(model, first), seen(BOTH), NOW)
    assert {DeleteRevision("old"), DeleteRevision("new")} <= set(drained.actions)


def test_the_phase_is_decommissioned_whatever_else_the_status_says() -> None:
    status = ModelDeploymentStatus.model_validate(
        {"decommissioned": {"at": NOW, "by": "alice", "request": "d1"}}
    )
    assert phase.of(status) == "Decommissioned"
