"""The first-rollout strategy, as a table: (status, observations) -> (actions, status)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.strategies import conditions, replace
from pitstop.strategies.decision import (
    DeleteRevision,
    EnsureRevision,
    Observations,
    RevisionState,
    RouteEntry,
    ScaleRevision,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
UP = RevisionState(replicas=2, ready_replicas=2, available=True)
STARTING = RevisionState(replicas=2, ready_replicas=0, available=False)


def md(status: dict[str, Any] | None = None, image: str | None = "reg/fraud:7") -> ModelDeployment:
    spec: dict[str, Any] = {"model": {"name": "fraud", "version": "7"}, "serving": {"replicas": 2}}
    if image is not None:
        spec["image"] = image
    else:
        spec["model"]["source"] = {"uri": "s3://models/fraud/7"}
        spec["build"] = {"registry": "reg"}
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "fraud", "namespace": "ml", "uid": "u1", "generation": 3},
            "spec": spec,
            "status": status or {},
        }
    )


def serving(revision: str, version: str = "6") -> dict[str, Any]:
    return {
        "revision": revision,
        "version": version,
        "image": f"reg/fraud:{version}",
        "since": EARLIER,
    }


CASES = [
    pytest.param(
        {},
        Observations("new", "reg/fraud:7", {}),
        [EnsureRevision("new", 2), RouteEntry("new")],
        ("Deploying", None, "new"),
        id="first revision: create it, point the entry at it, wait",
    ),
    pytest.param(
        {"candidate": serving("new", "7")},
        Observations("new", "reg/fraud:7", {"new": STARTING}),
        [EnsureRevision("new", 2), RouteEntry("new")],
        ("Deploying", None, "new"),
        id="first revision still starting: keep waiting",
    ),
    pytest.param(
        {"candidate": serving("new", "7")},
        Observations("new", "reg/fraud:7", {"new": UP}),
        [EnsureRevision("new", 2), RouteEntry("new")],
        ("Healthy", "new", None),
        id="first revision available: it becomes stable",
    ),
    pytest.param(
        {"stable": serving("new", "7")},
        Observations("new", "reg/fraud:7", {"new": UP}),
        [EnsureRevision("new", 2), RouteEntry("new")],
        ("Healthy", "new", None),
        id="steady state: same revision is kept (replicas applied in place)",
    ),
    pytest.param(
        {"stable": serving("new", "7")},
        Observations("new", "reg/fraud:7", {"new": STARTING}),
        [EnsureRevision("new", 2), RouteEntry("new")],
        ("Degraded", "new", None),
        id="stable lost its ready pods: degraded, nothing deleted",
    ),
    pytest.param(
        {"stable": serving("old")},
        Observations("new", "reg/fraud:7", {"old": UP}),
        [EnsureRevision("new", 2), ScaleRevision("old", 2), RouteEntry("old")],
        ("Progressing", "old", "new"),
        id="new revision: start it beside the stable, which keeps all traffic",
    ),
    pytest.param(
        {"stable": serving("old"), "candidate": serving("new", "7")},
        Observations("new", "reg/fraud:7", {"old": UP, "new": UP}),
        [
            EnsureRevision("new", 2),
            ScaleRevision("old", 2),
            RouteEntry("new"),
            DeleteRevision("old"),
        ],
        ("Healthy", "new", None),
        id="new revision available: switch the entry, retire the old one",
    ),
    pytest.param(
        {"stable": serving("old"), "candidate": serving("mid", "8")},
        Observations("new", "reg/fraud:7", {"old": UP, "mid": STARTING}),
        [
            EnsureRevision("new", 2),
            ScaleRevision("old", 2),
            RouteEntry("old"),
            DeleteRevision("mid"),
        ],
        ("Progressing", "old", "new"),
        id="spec changed mid-rollout: the candidate is superseded, stable untouched",
    ),
    pytest.param(
        {"stable": serving("old"), "candidate": serving("new", "7")},
        Observations("old", "reg/fraud:6", {"old": UP, "new": STARTING}),
        [EnsureRevision("old", 2), RouteEntry("old"), DeleteRevision("new")],
        ("Healthy", "old", None),
        id="spec reverted to the stable revision: rollout cancelled",
    ),
    pytest.param(
        {"stable": serving("old")},
        Observations("old", "reg/fraud:6", {"old": UP, "stray": STARTING}),
        [EnsureRevision("old", 2), RouteEntry("old"), DeleteRevision("stray")],
        ("Healthy", "old", None),
        id="leftover revision from an interrupted run is removed",
    ),
]


@pytest.mark.parametrize(("before", "seen", "actions", "after"), CASES)
def test_decide(
    before: dict[str, Any],
    seen: Observations,
    actions: list[object],
    after: tuple[str, str | None, str | None],
) -> None:
    decision = replace.decide(md(before), seen, NOW)
    assert list(decision.actions) == actions
    phase, stable, candidate = after
    assert decision.status.phase == phase
    assert (decision.status.stable.revision if decision.status.stable else None) == stable
    assert (decision.status.candidate.revision if decision.status.candidate else None) == candidate
    assert decision.status.observed_generation == 3


def test_promotion_is_recorded_in_history_and_as_an_event() -> None:
    before = {"stable": serving("old"), "candidate": serving("new", "7"), "phase": "Progressing",
              "history": [{"revision": "old", "version": "6", "image": "reg/fraud:6",
                           "startedAt": EARLIER, "outcome": "Promoted"}]}  # fmt: skip
    decision = replace.decide(md(before), Observations("new", "x", {"old": UP, "new": UP}), NOW)
    old, new = decision.status.history
    assert (old.revision, old.outcome, old.ended_at) == ("old", "Retired", NOW)
    assert (new.revision, new.outcome, new.ended_at) == ("new", "Promoted", None)
    assert [e.reason for e in decision.events] == ["Promoted", "Healthy"]
    assert decision.status.traffic.stable == 100
    assert decision.requeue_after is None


def test_unchanged_world_gives_an_unchanged_status() -> None:
    """The reconciler skips the status write when nothing changed: decide is idempotent."""
    first = replace.decide(md({"candidate": serving("new", "7")}),
                           Observations("new", "x", {"new": UP}), NOW)  # fmt: skip
    again = md(first.status.model_dump(by_alias=True))
    second = replace.decide(again, Observations("new", "x", {"new": UP}), NOW + timedelta(hours=1))
    assert second.status == first.status
    assert second.events == ()


def test_condition_transition_time_moves_only_on_change() -> None:
    first = replace.decide(md(), Observations("new", "x", {}), EARLIER)
    again = md(first.status.model_dump(by_alias=True))
    second = replace.decide(again, Observations("new", "x", {"new": STARTING}), NOW)
    ready = conditions.find(second.status.conditions, conditions.READY)
    progressing = conditions.find(second.status.conditions, conditions.PROGRESSING)
    assert ready is not None
    assert ready.last_transition_time == EARLIER
    assert progressing is not None
    assert "0/2 ready" in progressing.message


def test_no_image_keeps_the_stable_serving_and_says_why() -> None:
    decision = replace.decide(md({"stable": serving("old")}, image=None),
                              Observations("new", None, {"old": UP}), NOW)  # fmt: skip
    assert list(decision.actions) == [ScaleRevision("old", 2), RouteEntry("old")]
    built = conditions.find(decision.status.conditions, conditions.IMAGE_BUILT)
    assert built is not None
    assert built.status == "False"
    assert "spec.image" in built.message
    assert decision.status.phase == "Healthy"


def test_no_image_and_nothing_serving_is_pending() -> None:
    decision = replace.decide(md(image=None), Observations("new", None, {}), NOW)
    assert decision.actions == ()
    assert decision.status.phase == "Pending"
