"""The rollout engine as tables: (spec, status, observations) -> (actions, status).

Revisions are named by role: "old" is stable, "new" the spec's revision. UP means
the revision's Deployment is available with the replicas asked; STARTING that it is not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ModelDeploymentStatus
from pitstop.strategies import conditions, engine
from pitstop.strategies import history as history_module
from pitstop.strategies.decision import (
    Checks,
    DeleteRevision,
    EnsureRevision,
    ImageState,
    Observations,
    RevisionState,
    ScaleRevision,
    SetTraffic,
    Traffic,
)
from pitstop.strategies.requests import Request

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
IMAGE = ImageState("reg/fraud:7")


def up(replicas: int = 2) -> RevisionState:
    return RevisionState(replicas=replicas, ready_replicas=replicas, available=True)


def starting(replicas: int = 2) -> RevisionState:
    return RevisionState(replicas=replicas, ready_replicas=0, available=False)


def md(strategy: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
       **spec: Any) -> ModelDeployment:  # fmt: skip
    body: dict[str, Any] = {
        "model": {"name": "fraud", "version": "7"},
        "image": "reg/fraud:7",
        "serving": {"replicas": 2},
        "strategy": strategy or {"type": "Canary"},
        **spec,
    }
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "fraud", "namespace": "ml", "uid": "u", "generation": 3},
            "spec": body,
            "status": status or {},
        }
    )


def rev(revision: str, version: str = "6", **extra: Any) -> dict[str, Any]:
    return {"revision": revision, "version": version, "image": f"reg/fraud:{version}",
            "since": EARLIER, **extra}  # fmt: skip


def cand(state: str, **extra: Any) -> dict[str, Any]:
    return rev("new", "7", **{"state": state, "stepStartedAt": EARLIER, **extra})


def seen(revisions: dict[str, RevisionState], **extra: Any) -> Observations:
    return Observations("new", extra.pop("image", IMAGE), revisions, **extra)


STEPS = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "1m"},
                                                 {"weight": 50}]}}  # fmt: skip
STABLE = {"stable": rev("old"), "history": [{"revision": "old", "version": "6",
          "image": "reg/fraud:6", "startedAt": EARLIER, "outcome": "Promoted"}]}  # fmt: skip

CASES = [
    # --- first deployment and steady state
    ("first revision is created and waits", md(), seen({}),
     [EnsureRevision("new", 2), SetTraffic("new")], "Deploying", None, "Starting"),
    ("first revision available becomes stable", md(status={"candidate": cand("Starting")}),
     seen({"new": up()}), [EnsureRevision("new", 2), SetTraffic("new")], "Healthy", "new", None),
    ("steady state keeps the stable in place", md(status={"stable": rev("new", "7")}),
     seen({"new": up()}), [EnsureRevision("new", 2), SetTraffic("new")], "Healthy", "new", None),
    ("steady state with pods lost is degraded", md(status={"stable": rev("new", "7")}),
     seen({"new": starting()}), [EnsureRevision("new", 2), SetTraffic("new")], "Degraded", "new", None),
    # --- canary
    ("canary starts the candidate with no traffic", md(STEPS, STABLE), seen({"old": up()}),
     [EnsureRevision("new", 2), SetTraffic("old")], "Progressing", "old", "Starting"),
    ("canary candidate up: first step's weight", md(STEPS, {**STABLE, "candidate": cand("Starting")}),
     seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 10)], "Progressing", "old", "Canary"),
    ("canary step holds during its pause",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0, stepStartedAt=NOW - timedelta(seconds=20))}),
     seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 10)], "Progressing", "old", "Canary"),
    ("canary step without pause waits for promote",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=1)}), seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 50)], "Paused", "old", "Canary"),
    ("promote on the last step promotes the candidate",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=1)}),
     seen({"old": up(), "new": up()}, request=Request("promote", "r1")),
     [EnsureRevision("new", 2), SetTraffic("new"), ScaleRevision("old", 0)], "Healthy", "new", None),
    ("an unverified weight holds the step",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)}),
     seen({"old": up(), "new": up()}, traffic=Traffic(verified=False, message="route not updated")),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 10)], "Progressing", "old", "Canary"),
    ("an inconclusive verdict holds the step",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)}),
     seen({"old": up(), "new": up()}, checks=Checks("Inconclusive", "12 requests < 50")),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 10)], "Progressing", "old", "Canary"),
    ("service provider: a 10% step is one pod beside two",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0, stepStartedAt=NOW)}),
     seen({"old": up(), "new": up(1)}, traffic=Traffic(weights_by_replicas=True)),
     [EnsureRevision("new", 1), SetTraffic("old", "new", 10)], "Progressing", "old", "Canary"),
    ("a failing verdict rolls back: all traffic to stable",
     md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)}),
     seen({"old": up(), "new": up()}, checks=Checks("Fail", "error-rate 0.2 > 0.01")),
     [SetTraffic("old"), ScaleRevision("new", 0)], "RolledBack", "old", None),
    # --- blue/green
    ("blue/green preview then automatic switch",
     md({"type": "BlueGreen"}, {**STABLE, "candidate": cand("Preview")}),
     seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("new")], "Healthy", "new", None),
    ("blue/green without autoPromote pauses in preview",
     md({"type": "BlueGreen", "blueGreen": {"autoPromote": False}}, {**STABLE, "candidate": cand("Preview")}),
     seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old")], "Paused", "old", "Preview"),
    # --- shadow
    ("shadow mirrors while its duration runs",
     md({"type": "Shadow", "shadow": {"percent": 50, "duration": "10m"}},
        {**STABLE, "candidate": cand("Shadow")}), seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 0, 50)], "Progressing", "old", "Shadow"),
    ("shadow done, promote Manual: paused, still mirroring",
     md({"type": "Shadow", "shadow": {"duration": "1m", "promote": "Manual"}},
        {**STABLE, "candidate": cand("Shadow")}), seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 0, 100)], "Paused", "old", "Shadow"),
    ("shadow done, promote with canary: steps begin",
     md({"type": "Shadow", "shadow": {"duration": "1m", "promoteWith": "Canary"}, **{"canary": STEPS["canary"]}},
        {**STABLE, "candidate": cand("Shadow")}), seen({"old": up(), "new": up()}),
     [EnsureRevision("new", 2), SetTraffic("old", "new", 0, 100)], "Progressing", "old", "Canary"),
    # --- the spec moves during a rollout
    ("spec changed mid-rollout: the candidate is superseded, stable untouched",
     md(STEPS, {**STABLE, "candidate": rev("mid", "8", state="Canary", step=0)}),
     seen({"old": up(), "mid": up()}),
     [EnsureRevision("new", 2), SetTraffic("old"), ScaleRevision("mid", 0)], "Progressing", "old", "Starting"),
    ("spec reverted to the stable revision: rollout cancelled",
     md(STEPS, {"stable": rev("new", "7"), "candidate": rev("mid", "8", state="Canary", step=0)}),
     seen({"new": up(), "mid": up()}),
     [EnsureRevision("new", 2), SetTraffic("new"), ScaleRevision("mid", 0)], "Healthy", "new", None),
    ("a rejected revision is not retried",
     md(STEPS, {**STABLE, "rejectedRevision": "new", "history": [*STABLE["history"], {
         "revision": "new", "version": "7", "image": "i", "endedAt": EARLIER, "outcome": "RolledBack"}]}),
     seen({"old": up(), "new": up(0)}),
     [SetTraffic("old")], "RolledBack", "old", None),
    ("traffic provider problem: nothing starts, stable serves",
     md(STEPS, STABLE), seen({"old": up()}, traffic=Traffic(problem="HTTPRoute fraud not found")),
     [], "Healthy", "old", None),
    ("no image yet: stable keeps serving",
     md(STEPS, STABLE), seen({"old": up()}, image=ImageState(None, "False", "Building", "building")),
     [SetTraffic("old")], "Healthy", "old", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "world", "actions", "phase", "stable", "candidate_state"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decide(
    model: ModelDeployment,
    world: Observations,
    actions: list[object],
    phase: str,
    stable: str | None,
    candidate_state: str | None,
) -> None:
    decision = engine.decide(model, world, NOW)
    assert list(decision.actions) == actions
    status = decision.status
    assert status.phase == phase
    assert (status.stable.revision if status.stable else None) == stable
    assert (status.candidate.state if status.candidate else None) == candidate_state
    assert status.observed_generation == 3
    assert status.revision == "new"


def history(*entries: tuple[str, str, datetime | None]) -> list[dict[str, Any]]:
    return [{"revision": r, "version": "1", "image": "i", "startedAt": EARLIER, "endedAt": end,
             "outcome": outcome} for r, outcome, end in entries]  # fmt: skip


def test_blue_green_switch_keeps_the_old_stable_up_then_retires_it() -> None:
    model = md({"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "30s"}},
               {**STABLE, "candidate": cand("Preview")})  # fmt: skip
    switched = engine.decide(model, seen({"old": up(), "new": up()}), NOW)
    status = switched.status
    assert status.stable is not None
    assert status.stable.revision == "new"
    assert status.previous is not None
    assert status.previous.until == NOW + timedelta(seconds=30)
    assert switched.requeue_after == 30
    assert [(h.revision, h.outcome) for h in status.history] == [
        ("old", "Retired"),
        ("new", "Promoted"),
    ]
    later = md({"type": "BlueGreen"}, status.model_dump(by_alias=True))
    retired = engine.decide(later, seen({"old": up(), "new": up()}), NOW + timedelta(seconds=31))
    assert ScaleRevision("old", 0) in retired.actions
    assert retired.status.previous is None


def test_failure_after_promotion_goes_back_to_the_previous_stable() -> None:
    model = md({"type": "BlueGreen"}, {
        "stable": rev("new", "7"), "previous": rev("old", until=NOW + timedelta(seconds=20)),
        "history": history(("old", "Retired", EARLIER), ("new", "Promoted", None))})  # fmt: skip
    decision = engine.decide(model, seen({"old": up(), "new": up()},
                                          checks=Checks("Fail", "p99 0.9 > 0.25")), NOW)  # fmt: skip
    status = decision.status
    assert status.stable is not None
    assert status.stable.revision == "old"
    assert status.rejected_revision == "new"
    assert SetTraffic("old") in decision.actions
    assert status.phase == "RolledBack"
    degraded = conditions.find(status.conditions, conditions.DEGRADED)
    assert degraded is not None
    assert degraded.status == "True"
    assert "p99 0.9 > 0.25" in degraded.message
    assert [e.reason for e in decision.events][:1] == ["RolledBack"]


def test_abort_request_rolls_back_and_is_handled_once() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Canary", step=0)})
    request = Request("abort", "req-1")
    aborted = engine.decide(model, seen({"old": up(), "new": up()}, request=request), NOW)
    assert aborted.status.candidate is None
    assert aborted.status.rejected_revision == "new"
    assert aborted.status.last_request == "req-1"
    assert aborted.status.history[-1].outcome == "Aborted"
    again = md(STEPS, aborted.status.model_dump(by_alias=True))
    second = engine.decide(again, seen({"old": up(), "new": up(0)}, request=request), NOW)
    assert second.status.phase == "RolledBack"
    assert [e.reason for e in second.events if e.reason == "Aborted"] == []


MISSING = "HTTPRoute ml/fraud (spec.traffic.httpRoute.name) does not exist"


@pytest.mark.parametrize(
    ("model", "revisions", "progressing"),
    [
        pytest.param(md(STEPS, STABLE), {"old": up()}, "False", id="new revision: not started"),
        pytest.param(md(), {}, "True", id="first revision: deployed"),
        pytest.param(md(status={"stable": rev("new", "7")}), {"new": up()}, "False",
                     id="steady state"),
    ],
)  # fmt: skip
def test_a_traffic_problem_is_reported_not_routed_and_looked_at_again(
    model: ModelDeployment, revisions: dict[str, RevisionState], progressing: str
) -> None:
    """The provider would fail on a missing route; nothing watches routes, so poll."""
    decision = engine.decide(model, seen(revisions, traffic=Traffic(problem=MISSING)), NOW)
    assert [a for a in decision.actions if isinstance(a, SetTraffic)] == []
    found = conditions.find(decision.status.conditions, conditions.PROGRESSING)
    assert found is not None
    assert (found.status, found.reason, found.message) == (
        progressing,
        "TrafficUnavailable",
        MISSING,
    )
    assert decision.requeue_after == engine.POLL_SECONDS


def test_retry_clears_the_rejection_and_the_rollout_starts_again() -> None:
    model = md(STEPS, {**STABLE, "rejectedRevision": "new"})
    decision = engine.decide(model, seen({"old": up()}, request=Request("retry", "r2")), NOW)
    assert decision.status.rejected_revision is None
    assert decision.status.candidate is not None
    assert decision.status.candidate.state == "Starting"


def test_undo_brings_a_retained_revision_back_and_holds_the_spec_revision() -> None:
    model = md(STEPS, {"stable": rev("new", "7"), "history": history(
        ("older", "Retired", EARLIER - timedelta(minutes=1)), ("new", "Promoted", None))})  # fmt: skip
    world = {"new": up(), "older": up(0)}
    first = engine.decide(model, seen(world, request=Request("undo", "u1", "older")), NOW)
    assert ScaleRevision("older", 2) in first.actions
    assert first.status.candidate is not None
    assert first.status.candidate.state == "Restoring"
    back = md(STEPS, first.status.model_dump(by_alias=True))
    done = engine.decide(back, seen({"new": up(), "older": up()}), NOW)
    assert done.status.stable is not None
    assert done.status.stable.revision == "older"
    assert done.status.rejected_revision == "new"
    assert done.status.phase == "RolledBack"
    assert SetTraffic("older") in done.actions


def test_undo_to_an_unknown_revision_is_refused_with_an_event() -> None:
    model = md(STEPS, {"stable": rev("new", "7")})
    decision = engine.decide(model, seen({"new": up()}, request=Request("undo", "u", "nope")), NOW)
    assert decision.status.stable is not None
    assert decision.status.stable.revision == "new"
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "InvalidRequest")]


def test_retired_revisions_scale_to_zero_and_go_beyond_the_history_limit() -> None:
    model = md(STEPS, {"stable": rev("new", "7"), "history": history(
        ("r1", "Retired", NOW - timedelta(hours=3)), ("r2", "Retired", NOW - timedelta(hours=2)),
        ("r3", "RolledBack", NOW - timedelta(hours=1)), ("new", "Promoted", None))},
        revisionHistoryLimit=2)  # fmt: skip
    world = {"new": up(), "r1": up(0), "r2": up(), "r3": up(0), "stray": up()}
    decision = engine.decide(model, seen(world), NOW)
    assert ScaleRevision("r2", 0) in decision.actions
    assert DeleteRevision("r1") in decision.actions
    assert DeleteRevision("stray") in decision.actions
    assert DeleteRevision("r3") not in decision.actions
    assert [h.revision for h in decision.status.history] == ["r1", "r2", "r3", "new"]


def test_current_split_follows_the_recorded_step() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Canary", step=1)})
    assert engine.current_split(model) == SetTraffic("old", "new", 50)
    shadow = md(
        {"type": "Shadow", "shadow": {"percent": 30}}, {**STABLE, "candidate": cand("Shadow")}
    )
    assert engine.current_split(shadow) == SetTraffic("old", "new", 0, 30)
    assert engine.current_split(md(STEPS, STABLE)) == SetTraffic("old")


def test_status_is_unchanged_when_the_world_is() -> None:
    """The reconciler skips the status write when nothing changed: decide is idempotent."""
    first = engine.decide(md(status={"candidate": cand("Starting")}), seen({"new": up()}), NOW)
    again = md(status=first.status.model_dump(by_alias=True))
    second = engine.decide(again, seen({"new": up()}), NOW + timedelta(hours=1))
    assert second.status == first.status
    assert second.events == ()
    assert second.requeue_after is None


def test_a_failed_smoke_test_aborts_before_any_traffic() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Starting")})
    decision = engine.decide(model, seen({"old": up(), "new": up()},
                                          smoke=Checks("Fail", "smoke test: HTTP 500: boom")),
                             NOW)  # fmt: skip
    status = decision.status
    assert status.candidate is None
    assert status.rejected_revision == "new"
    assert status.history[-1].outcome == "Aborted"
    assert SetTraffic("old") in decision.actions
    assert not any(isinstance(a, SetTraffic) and a.candidate for a in decision.actions)
    degraded = conditions.find(status.conditions, conditions.DEGRADED)
    assert degraded is not None
    assert "failed before any traffic: smoke test: HTTP 500" in degraded.message


def test_a_pending_smoke_test_holds_the_candidate_without_traffic() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Starting")})
    decision = engine.decide(model, seen({"old": up(), "new": up()},
                                          smoke=Checks("Inconclusive", "waiting")), NOW)  # fmt: skip
    assert decision.status.candidate is not None
    assert decision.status.candidate.state == "Starting"
    assert SetTraffic("old") in decision.actions


def test_post_promotion_window_keeps_the_previous_stable_up() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Canary", step=1)},
               analysis={"postPromotionWindow": "2m"})  # fmt: skip
    decision = engine.decide(
        model, seen({"old": up(), "new": up()}, request=Request("promote", "p")), NOW
    )
    assert decision.status.previous is not None
    assert decision.status.previous.until == NOW + timedelta(minutes=2)


LONG_WINDOW = {"postPromotionWindow": "2h"}


def test_past_the_scale_down_delay_the_previous_waits_at_one_pod_through_the_window() -> None:
    """Delayed labels make the window hours long: the previous stable stays for an
    instant rollback, but at one pod once the scale-down delay is over."""
    model = md({"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "30s"}},
               {**STABLE, "candidate": cand("Preview")}, analysis=LONG_WINDOW)  # fmt: skip
    switched = engine.decide(model, seen({"old": up(), "new": up()}), NOW)
    previous = switched.status.previous
    assert previous is not None
    assert (previous.full_until, previous.until) == (
        NOW + timedelta(seconds=30), NOW + timedelta(hours=2)
    )  # fmt: skip
    assert not any(isinstance(a, ScaleRevision) for a in switched.actions)  # full size
    assert switched.requeue_after == 30

    later = md({"type": "BlueGreen"}, switched.status.model_dump(by_alias=True),
               analysis=LONG_WINDOW)  # fmt: skip
    waiting = engine.decide(later, seen({"old": up(), "new": up()}), NOW + timedelta(seconds=31))
    assert ScaleRevision("old", 1) in waiting.actions
    assert waiting.status.previous is not None
    assert waiting.requeue_after == pytest.approx(2 * 3600 - 31)

    at_one = seen({"old": up(1), "new": up()})
    still = engine.decide(later, at_one, NOW + timedelta(hours=1))
    assert not any(isinstance(a, ScaleRevision) for a in still.actions)
    assert still.status.previous is not None

    over = engine.decide(later, at_one, NOW + timedelta(hours=2, seconds=1))
    assert ScaleRevision("old", 0) in over.actions
    assert over.status.previous is None


def test_without_a_scale_down_delay_the_previous_goes_to_one_pod_after_the_switch() -> None:
    model = md(STEPS, {**STABLE, "candidate": cand("Canary", step=1)}, analysis=LONG_WINDOW)
    promoted = engine.decide(
        model, seen({"old": up(), "new": up()}, request=Request("promote", "p")), NOW
    )
    assert promoted.status.previous is not None
    assert promoted.status.previous.until == NOW + timedelta(hours=2)
    # Users leave it first: the switch comes before what shrinks.
    assert promoted.actions[-2:] == (SetTraffic("new"), ScaleRevision("old", 1))


def test_a_failure_in_the_window_sends_users_back_at_once_and_scales_the_previous_up() -> None:
    """Instant means users stop hitting the failing model now: traffic goes back to the
    one waiting pod in this pass, right after it is asked to grow to full size."""
    model = md({"type": "BlueGreen"}, {
        "stable": rev("new", "7"),
        "previous": rev("old", until=NOW + timedelta(hours=1), fullUntil=EARLIER),
        "history": history(("old", "Retired", EARLIER), ("new", "Promoted", None))},
        analysis=LONG_WINDOW)  # fmt: skip
    decision = engine.decide(model, seen({"old": up(1), "new": up()},
                                          checks=Checks("Fail", "quality 0.3 > 0.1")), NOW)  # fmt: skip
    assert decision.actions == (
        ScaleRevision("old", 2), SetTraffic("old"), ScaleRevision("new", 0)
    )  # fmt: skip
    status = decision.status
    assert status.stable is not None
    assert (status.stable.revision, status.stable.until, status.stable.full_until) == (
        "old", None, None
    )  # fmt: skip
    assert status.previous is None
    assert status.rejected_revision == "new"
    assert status.phase == "RolledBack"

    # While it grows back it serves, with one pod and then more: rolled back, not degraded.
    model = md({"type": "BlueGreen"}, status.model_dump(by_alias=True), analysis=LONG_WINDOW)
    growing = engine.decide(model, seen({"old": RevisionState(2, 1, False), "new": up(0)}), NOW)
    assert growing.status.phase == "RolledBack"
    ready = conditions.find(growing.status.conditions, conditions.READY)
    assert ready is not None
    assert (ready.status, ready.message) == (
        "True", "version 6 (revision old) serves with 1/2 ready replicas, back from one after "
        "the rollback",
    )  # fmt: skip
    grown = engine.decide(model, seen({"old": up(), "new": up(0)}), NOW)
    assert grown.status.stable is not None
    assert grown.status.stable.waiting_since is None
    # Past the progress deadline a stable short of pods is degraded, as any other.
    stuck = engine.decide(
        model, seen({"old": RevisionState(2, 1, False), "new": up(0)}), NOW + timedelta(hours=1)
    )
    assert stuck.status.phase == "Degraded"


def test_a_previous_of_a_model_scaled_to_zero_waits_at_zero() -> None:
    model = md({"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "0s"}},
               {**STABLE, "candidate": cand("Preview")}, analysis=LONG_WINDOW,
               serving={"replicas": 0})  # fmt: skip
    switched = engine.decide(model, seen({"old": up(0), "new": up(0)}), NOW)
    assert switched.status.previous is not None
    assert not any(isinstance(a, ScaleRevision) and a.replicas > 0 for a in switched.actions)


def test_a_step_entered_in_this_pass_waits_for_its_route_to_be_verified() -> None:
    """The provider verified the split from before the step: a promote must not skip it."""
    model = md({"type": "Canary", "canary": {"steps": [{"weight": 10}, {"weight": 50}]}},
               {**STABLE, "candidate": cand("Starting")})  # fmt: skip
    decision = engine.decide(
        model, seen({"old": up(), "new": up()}, request=Request("promote", "p")), NOW
    )
    assert decision.status.candidate is not None
    assert (decision.status.candidate.state, decision.status.candidate.step) == ("Canary", 0)
    assert SetTraffic("old", "new", 10) in decision.actions


def test_service_provider_a_new_rollout_ends_the_previous_window_before_any_weight() -> None:
    """The `service` canary's entry Service selects every pod of the ModelDeployment: a
    previous stable still up for its window would answer users beside the canary. A new
    rollout ends that window, and no weight is set until the previous pods are gone."""
    by_pods = Traffic(weights_by_replicas=True)
    just_switched = md(STEPS, {
        "stable": rev("mid", "8"), "previous": rev("old", until=NOW + timedelta(minutes=5)),
        "history": history(("old", "Retired", EARLIER), ("mid", "Promoted", None))})  # fmt: skip
    started = engine.decide(just_switched, seen({"old": up(), "mid": up()}, traffic=by_pods), NOW)
    assert started.status.candidate is not None
    assert started.status.previous is None
    assert ScaleRevision("old", 0) in started.actions
    assert [e.reason for e in started.events] == ["RolloutStarted", "Retired"]

    # The canary's pod is up, the previous stable's pods are still going.
    going = {"old": RevisionState(0, 1, False), "mid": up(), "new": up(1)}
    model = md(STEPS, started.status.model_dump(by_alias=True))
    held = engine.decide(model, seen(going, traffic=by_pods), NOW)
    assert [a for a in held.actions if isinstance(a, SetTraffic)] == [SetTraffic("mid")]
    assert held.status.traffic.candidate == 0
    progressing = conditions.find(held.status.conditions, conditions.PROGRESSING)
    assert progressing is not None
    assert "old" in progressing.message

    gone = {"old": up(0), "mid": up(), "new": up(1)}
    weighted = engine.decide(model, seen(gone, traffic=by_pods), NOW)
    assert SetTraffic("mid", "new", 10) in weighted.actions
    assert weighted.status.traffic.candidate == 33


def test_service_provider_promotes_a_small_last_step_only_once_full_size() -> None:
    """With the `service` provider a 20% step is one pod beside two. Promoting from there
    would send all traffic to that one pod and scale the old stable to zero in the same
    pass: the candidate first grows to full size (as many pods as the stable: 50%), and
    only a full-size candidate takes over."""
    by_pods = Traffic(weights_by_replicas=True)
    one_step = {"type": "Canary", "canary": {"steps": [{"weight": 20, "pause": "1m"}]}}
    done = md(one_step, {**STABLE, "candidate": cand("Canary", step=0)})
    passed = engine.decide(done, seen({"old": up(), "new": up(1)}, traffic=by_pods), NOW)
    assert passed.actions == (EnsureRevision("new", 1), SetTraffic("old", "new", 20))
    assert passed.status.candidate is not None
    assert passed.status.stable is not None
    assert passed.status.stable.revision == "old"

    model = md(one_step, passed.status.model_dump(by_alias=True))
    one_of_two = RevisionState(replicas=2, ready_replicas=1, available=False)
    growing = engine.decide(model, seen({"old": up(), "new": one_of_two}, traffic=by_pods), NOW)
    assert growing.actions == (EnsureRevision("new", 2), SetTraffic("old", "new", 50))
    assert growing.status.candidate is not None
    assert growing.status.traffic.candidate == 50

    full = engine.decide(model, seen({"old": up(), "new": up(2)}, traffic=by_pods), NOW)
    assert full.actions == (EnsureRevision("new", 2), SetTraffic("new"), ScaleRevision("old", 0))
    assert full.status.stable is not None
    assert full.status.stable.revision == "new"


def test_service_provider_moves_traffic_before_any_pods_go() -> None:
    """With the `service` provider an 80% step is eight candidate pods beside two. The
    promoting pass shrinks the candidate to its stable size and the old stable to zero:
    were either scaled before the entry Service moved, kube-proxy would balance over
    two and two pods for a moment, taking the candidate back from 80% to 50% before it
    gets 100% (a flip-flop the fault-injection test saw). Traffic moves first; what
    grows comes before it, what shrinks after it."""
    by_pods = Traffic(weights_by_replicas=True)
    steps = {"type": "Canary", "canary": {"steps": [{"weight": 80, "pause": "1m"}]}}
    done = md(steps, {**STABLE, "candidate": cand("Canary", step=0)})
    promoted = engine.decide(done, seen({"old": up(), "new": up(8)}, traffic=by_pods), NOW)
    assert promoted.status.stable is not None
    assert promoted.status.stable.revision == "new"
    assert promoted.actions == (
        SetTraffic("new"),
        EnsureRevision("new", 2),
        ScaleRevision("old", 0),
    )


def test_a_step_beyond_the_steps_left_in_the_spec_goes_on_from_the_last_one() -> None:
    """Steps removed from the spec mid-rollout: exact weights have no growing step."""
    model = md(STEPS, {**STABLE, "candidate": cand("Canary", step=2)})
    decision = engine.decide(model, seen({"old": up(), "new": up()}), NOW)
    assert decision.status.candidate is not None
    assert decision.status.candidate.step == 1
    assert SetTraffic("old", "new", 50) in decision.actions
    assert engine.current_split(md(STEPS, decision.status.model_dump(by_alias=True))) == (
        SetTraffic("old", "new", 50)
    )


def test_history_keeps_its_last_entries_and_those_still_needed() -> None:
    """Every rollout adds entries: the history keeps the newest ones, and older ones only
    while the engine still reads them: the serving revision's open entry, and the last
    entry of each revision still retained (undo and retirement order read it)."""
    hours = 3 * history_module.LIMIT
    entries = history(("new", "Promoted", None), *[
        (f"c{i}", "RolledBack", NOW - timedelta(hours=hours - i)) for i in range(hours)])  # fmt: skip
    model = md(STEPS, {"stable": rev("new", "7"), "history": entries, "rejectedRevision": "new"})
    # c0 and c1 are the oldest, but still retained.
    world = {"new": up(), "c0": up(0), "c1": up(0), f"c{hours - 1}": up(0)}
    decision = engine.decide(model, seen(world), NOW)
    kept = [h.revision for h in decision.status.history]
    newest = [f"c{i}" for i in range(hours - history_module.LIMIT, hours)]
    assert kept == ["new", "c0", "c1", *newest]
    assert decision.status.history[0].ended_at is None
    # Nothing older is dropped once the history is short enough.
    again = md(STEPS, decision.status.model_dump(by_alias=True))
    assert engine.decide(again, seen(world), NOW).status.history == decision.status.history
    described = ModelDeploymentStatus.model_fields["history"].description or ""
    assert f"the last {history_module.LIMIT} entries" in described  # what `kubectl explain` says


def test_undo_to_the_previous_stable_during_its_window_serves_it_at_once() -> None:
    """The previous stable is up: an undo to it is instant, and it is not scaled down."""
    model = md(STEPS, {
        "stable": rev("new", "7"), "previous": rev("old", until=NOW + timedelta(minutes=5)),
        "history": history(("old", "Retired", EARLIER), ("new", "Promoted", None))})  # fmt: skip
    world = seen({"old": up(), "new": up()}, request=Request("undo", "u1", "old"))
    decision = engine.decide(model, world, NOW)
    assert decision.status.stable is not None
    assert decision.status.stable.revision == "old"
    assert decision.status.previous is None
    assert ScaleRevision("old", 0) not in decision.actions
    assert SetTraffic("old") in decision.actions
    assert [e.reason for e in decision.events] == ["UndoRequested", "Restored"]


CANNOT_MIRROR = "GatewayClass traefik (of Gateway ml/web) does not list HTTPRouteRequestMirror"
SHADOW = {"type": "Shadow", "shadow": {"percent": 100, "duration": "5m"}}


def test_a_shadow_waits_where_the_gateway_cannot_mirror_and_the_stable_keeps_serving() -> None:
    """A gateway implementation that cannot mirror: the new revision does not start
    (nothing is copied, nothing scaled up), the stable keeps all traffic, the condition
    says why, and Pitstop looks again (nothing watches GatewayClasses)."""
    traffic = Traffic(unsupported=CANNOT_MIRROR)
    decision = engine.decide(md(SHADOW, STABLE), seen({"old": up()}, traffic=traffic), NOW)
    assert decision.status.candidate is None
    assert [a for a in decision.actions if isinstance(a, SetTraffic)] == [SetTraffic(stable="old")]
    assert not [a for a in decision.actions if isinstance(a, EnsureRevision)]
    found = conditions.find(decision.status.conditions, conditions.PROGRESSING)
    assert found is not None
    assert (found.status, found.reason, found.message) == ("False", "TrafficUnavailable",
                                                           CANNOT_MIRROR)  # fmt: skip
    assert decision.requeue_after == engine.POLL_SECONDS
    # The first revision needs no mirror: it is deployed and routed.
    first = engine.decide(md(SHADOW), seen({}, traffic=traffic), NOW)
    assert first.status.candidate is not None or first.status.stable is not None
    assert [a for a in first.actions if isinstance(a, EnsureRevision)]
    # Once the gateway can, the shadow starts.
    started = engine.decide(md(SHADOW, STABLE), seen({"old": up()}), NOW)
    assert started.status.candidate is not None
