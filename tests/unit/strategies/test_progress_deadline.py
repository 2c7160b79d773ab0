"""spec.progressDeadline, and no weight on a candidate without a ready pod, as tables.

A candidate whose pods are not ready (crash loop, unpullable image, unschedulable) waits
for them at most `progressDeadline`, counted from when it started lacking them; then it
is rolled back, and the reason names the cause its pods show. A first revision has
nothing to fall back to: it reports Progressing=False and keeps trying. Meanwhile a
candidate with no ready pod never keeps a weight: users would get 503s.

Revisions: "old" is stable, "new" the candidate. `waited` is how long the candidate has
lacked its pods (status.candidate.waitingSince); None: it had them until now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.api.status import ModelDeploymentStatus
from pitstop.strategies import conditions, engine
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import (
    Decision,
    EnsureRevision,
    ImageState,
    Observations,
    PodTrouble,
    RevisionState,
    ScaleRevision,
    SetTraffic,
    Traffic,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STEP_STARTED = NOW - timedelta(minutes=10)  # into a step of an hour
UP = RevisionState(replicas=2, ready_replicas=2, available=True)
CRASHING = PodTrouble(Reason.PODS_CRASH_LOOPING, "2/2 pods CrashLoopBackOff: back-off 40s")
PULLING = PodTrouble(Reason.IMAGE_PULL_FAILED, '2/2 pods ImagePullBackOff: Back-off pulling "x"')
NOWHERE = PodTrouble(Reason.PODS_UNSCHEDULABLE, "2/2 pods Unschedulable: 2 Insufficient cpu")
REFUSED = PodTrouble(Reason.PODS_NOT_CREATED, "FailedCreate: exceeded quota: pods")
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "1h"}, {"weight": 50}]}}
SHADOW = {"type": "Shadow", "shadow": {"duration": "1h"}}
BLUE_GREEN = {"type": "BlueGreen"}


def down(ready: int = 0, trouble: PodTrouble | None = None, replicas: int = 2) -> RevisionState:
    return RevisionState(replicas=replicas, ready_replicas=ready, available=False, trouble=trouble)


def model(strategy: dict[str, Any], state: str | None, waited: float | None,
          stable: bool = True, **spec: Any) -> ModelDeployment:  # fmt: skip
    status: dict[str, Any] = {}
    if stable:
        status["stable"] = {"revision": "old", "version": "6", "image": "reg/fraud:6"}
        status["history"] = [{"revision": "old", "version": "6", "image": "reg/fraud:6",
                              "outcome": "Promoted"}]  # fmt: skip
    if state is not None:
        status["candidate"] = {
            "revision": "new", "version": "7", "image": "reg/fraud:7", "state": state,
            "step": 0 if state == "Canary" else None, "stepStartedAt": STEP_STARTED,
            "waitingSince": None if waited is None else NOW - timedelta(seconds=waited),
        }  # fmt: skip
    return ModelDeployment.model_validate({
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"model": {"name": "fraud", "version": "7"}, "image": "reg/fraud:7",
                 "serving": {"replicas": 2}, "strategy": strategy, **spec},
        "status": status,
    })  # fmt: skip


def decide(md: ModelDeployment, new: RevisionState, traffic: Traffic | None = None) -> Decision:
    revisions = {"new": new} if md.status.stable is None else {"old": UP, "new": new}
    seen = Observations("new", ImageState("reg/fraud:7"), revisions, traffic or Traffic())
    return engine.decide(md, seen, NOW)


def condition(status: ModelDeploymentStatus, type_: str) -> tuple[str, str, str]:
    found = conditions.find(status.conditions, type_)
    assert found is not None
    return found.status, found.reason, found.message


# (strategy, candidate state, seconds waited, its pods, extra spec) -> what happens:
# "waits" (Progressing, the cause in the message) or the Degraded reason it is rolled
# back with.
DEADLINE = [
    ("crash loop within the deadline: waits, saying why",
     CANARY, "Starting", 300, down(0, CRASHING), {}, "waits"),
    ("crash loop past the deadline: rolled back",
     CANARY, "Starting", 601, down(0, CRASHING), {}, Reason.PODS_CRASH_LOOPING),
    ("unpullable image in preview", BLUE_GREEN, "Preview", 601, down(0, PULLING), {},
     Reason.IMAGE_PULL_FAILED),
    ("unschedulable while shadowing", SHADOW, "Shadow", 601, down(0, NOWHERE), {},
     Reason.PODS_UNSCHEDULABLE),
    ("pods never created (quota)", CANARY, "Starting", 601, down(0, REFUSED), {},
     Reason.PODS_NOT_CREATED),
    ("nothing said by the pods", CANARY, "Starting", 601, down(0), {},
     Reason.PROGRESS_DEADLINE_EXCEEDED),
    ("half the pods, past the deadline", CANARY, "Canary", 601, down(1, CRASHING), {},
     Reason.PODS_CRASH_LOOPING),
    ("a shorter deadline", CANARY, "Starting", 31, down(0, CRASHING),
     {"progressDeadline": "30s"}, Reason.PODS_CRASH_LOOPING),
    ("a longer deadline", CANARY, "Starting", 700, down(0, CRASHING),
     {"progressDeadline": "15m"}, "waits"),
    ("an undo's target just waits: the stable serves", CANARY, "Restoring", 601,
     down(0, CRASHING), {}, "waits"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "state", "waited", "new", "spec", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in DEADLINE],
)
def test_deadline(
    strategy: dict[str, Any],
    state: str,
    waited: float,
    new: RevisionState,
    spec: dict[str, Any],
    expected: str,
) -> None:
    decision = decide(model(strategy, state, waited, **spec), new)
    status = decision.status
    assert SetTraffic("old") in decision.actions  # nothing reaches a candidate without pods
    if expected == "waits":
        assert status.candidate is not None
        assert status.candidate.waiting_since == NOW - timedelta(seconds=waited)
        progressing = condition(status, conditions.PROGRESSING)
        assert progressing[:2] == ("True", Reason.WAITING_FOR_PODS)
        assert (new.trouble.message if new.trouble else "") in progressing[2]
        assert "progress deadline 2026-11-30T" in progressing[2]
        return
    assert status.candidate is None
    assert status.phase == "RolledBack"
    assert status.rejected_revision == "new"
    assert ScaleRevision("new", 0) in decision.actions
    degraded = condition(status, conditions.DEGRADED)
    assert degraded[:2] == ("True", expected)
    assert degraded[2].startswith("revision new rolled back: ")
    assert "ready replicas after progressDeadline" in degraded[2]
    entry = status.history[-1]
    assert (entry.revision, entry.outcome) == ("new", "RolledBack")
    assert new.trouble is None or new.trouble.message in entry.reason
    assert [(e.type, e.reason) for e in decision.events][:1] == [("Warning", "RolledBack")]


def test_the_clock_starts_when_pods_go_missing_and_stops_when_they_are_back() -> None:
    started = decide(model(CANARY, "Canary", None), down(0, CRASHING))
    assert started.status.candidate is not None
    assert started.status.candidate.waiting_since == NOW
    assert started.requeue_after == engine.POLL_SECONDS
    again = ModelDeployment.model_validate(
        {
            **model(CANARY, "Canary", None).model_dump(by_alias=True),
            "status": started.status.model_dump(by_alias=True),
        }
    )
    back = decide(again, UP)
    assert back.status.candidate is not None
    assert back.status.candidate.waiting_since is None
    assert back.status.candidate.step_started_at == STEP_STARTED  # the step's clock is kept


# --- A first revision: nothing to fall back to --------------------------------------


def test_a_first_revision_past_its_deadline_fails_but_keeps_trying() -> None:
    decision = decide(model(CANARY, "Starting", 601, stable=False), down(0, PULLING))
    status = decision.status
    assert status.phase == "Failed"
    assert status.candidate is not None  # still there, its Deployment still retried
    assert decision.actions == (EnsureRevision("new", 2), SetTraffic("new"))
    progressing = condition(status, conditions.PROGRESSING)
    assert progressing[:2] == ("False", Reason.IMAGE_PULL_FAILED)
    assert PULLING.message in progressing[2]
    assert "nothing to fall back to" in progressing[2]
    assert status.message == progressing[2]
    assert condition(status, conditions.READY)[:2] == ("False", Reason.NO_STABLE)


def test_a_first_revision_within_its_deadline_is_deploying() -> None:
    status = decide(model(CANARY, "Starting", 60, stable=False), down(0, PULLING)).status
    assert status.phase == "Deploying"
    assert condition(status, conditions.PROGRESSING)[:2] == ("True", Reason.WAITING_FOR_PODS)


def test_a_failed_first_revision_serves_once_its_pods_are_ready() -> None:
    status = decide(model(CANARY, "Starting", 3600, stable=False), UP).status
    assert status.phase == "Healthy"
    assert status.stable is not None
    assert status.stable.revision == "new"
    assert status.stable.waiting_since is None


# --- No weight without a ready pod ---------------------------------------------------

EXACT = Traffic()
BY_PODS = Traffic(weights_by_replicas=True)

# (provider, candidate pods) -> the split routed and the candidate's share in status.
WEIGHTS = [
    ("exact weights, pods ready", EXACT, UP, SetTraffic("old", "new", 10), 10),
    ("exact weights, pods crashed after being ready", EXACT, down(0, CRASHING),
     SetTraffic("old"), 0),
    ("exact weights, one of two pods ready", EXACT, down(1, CRASHING),
     SetTraffic("old", "new", 10), 10),
    ("service, the canary pod ready", BY_PODS, RevisionState(1, 1, True),
     SetTraffic("old", "new", 10), 33),
    ("service, the canary pod crashed", BY_PODS, down(0, CRASHING, replicas=1),
     SetTraffic("old"), 0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("traffic", "new", "split", "share"),
    [pytest.param(*case[1:], id=case[0]) for case in WEIGHTS],
)
def test_weight(traffic: Traffic, new: RevisionState, split: SetTraffic, share: int) -> None:
    decision = decide(model(CANARY, "Canary", None), new, traffic)
    assert [a for a in decision.actions if isinstance(a, SetTraffic)] == [split]
    assert decision.status.traffic.candidate == share
    assert decision.status.candidate is not None  # within its deadline: it waits
    assert decision.status.candidate.step == 0
