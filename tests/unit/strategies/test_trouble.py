"""Why a revision's pods are not ready, read from pods and Deployments as the API holds
them: each row is a pod (or pods) as a kubelet or the scheduler leaves it, and the
cause the progress deadline would report."""

from __future__ import annotations

from typing import Any

import pytest
from pitstop.strategies import trouble
from pitstop.strategies.conditions import Reason

Object = dict[str, Any]
DEPLOYMENT: Object = {"status": {"replicas": 2, "readyReplicas": 0}}


def pod(*conditions: tuple[str, str, str, str], waiting: tuple[str, str] | None = None,
        running: bool = False, deleting: bool = False) -> Object:  # fmt: skip
    state: Object = {}
    if waiting is not None:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    elif running:
        state = {"running": {"startedAt": "2026-11-30T12:00:00Z"}}
    meta: Object = {"name": "fraud-new-abc"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T12:00:00Z"
    return {
        "metadata": meta,
        "status": {
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions
            ],
            "containerStatuses": [{"name": "model", "ready": False, "state": state}]
            if state
            else [],
        },
    }


NOT_READY = ("Ready", "False", "ContainersNotReady", "containers with unready status: [model]")
UNSCHEDULABLE = ("PodScheduled", "False", "Unschedulable",
                 "0/2 nodes are available: 2 Insufficient cpu.")  # fmt: skip
CRASH = pod(NOT_READY, waiting=("CrashLoopBackOff", "back-off 40s restarting failed container"))
PULL = pod(NOT_READY, waiting=("ImagePullBackOff", 'Back-off pulling image "reg.invalid/x:1"'))
ERR_PULL = pod(NOT_READY, waiting=("ErrImagePull", "dial tcp: lookup reg.invalid: no such host"))
CONFIG = pod(NOT_READY, waiting=("CreateContainerConfigError", 'secret "keys" not found'))
CREATING = pod(NOT_READY, waiting=("ContainerCreating", ""))
PENDING = pod(UNSCHEDULABLE)
PROBING = pod(NOT_READY, running=True)
READY = pod(("Ready", "True", "", ""), running=True)


@pytest.mark.parametrize(
    ("pods", "reason", "message"),
    [
        pytest.param([CRASH, CRASH], Reason.PODS_CRASH_LOOPING,
                     "2/2 pods CrashLoopBackOff: back-off 40s restarting failed container",
                     id="crash loop"),
        pytest.param([PULL, ERR_PULL], Reason.IMAGE_PULL_FAILED,
                     '2/2 pods ImagePullBackOff: Back-off pulling image "reg.invalid/x:1"',
                     id="image pull, either word"),
        pytest.param([PENDING, PENDING], Reason.PODS_UNSCHEDULABLE,
                     "2/2 pods Unschedulable: 0/2 nodes are available: 2 Insufficient cpu.",
                     id="unschedulable"),
        pytest.param([CONFIG], Reason.PODS_NOT_READY,
                     '1/1 pods CreateContainerConfigError: secret "keys" not found',
                     id="another waiting reason, in the kubelet's words"),
        pytest.param([PROBING, READY], Reason.PODS_NOT_READY,
                     "1/2 pods running but not ready: its readiness probe fails",
                     id="running, readiness failing"),
        pytest.param([CRASH, PENDING, READY], Reason.PODS_UNSCHEDULABLE,
                     "1/3 pods Unschedulable: 0/2 nodes are available: 2 Insufficient cpu.",
                     id="the earliest cause in a pod's life wins"),
        pytest.param([CREATING, READY], None, "", id="only starting: nothing to report"),
        pytest.param([pod(NOT_READY, waiting=("CrashLoopBackOff", "x"), deleting=True)], None,
                     "", id="terminating pods do not count"),
        pytest.param([], None, "", id="no pods"),
    ],
)  # fmt: skip
def test_pods_say_why(pods: list[Object], reason: str | None, message: str) -> None:
    found = trouble.of(DEPLOYMENT, pods)
    assert (found.reason if found else None) == reason
    assert (found.message if found else "") == message


def test_pods_refused_creation_are_told_by_the_deployment() -> None:
    refused = {"status": {"conditions": [{
        "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
        "message": 'pods "fraud-new-abc" is forbidden: exceeded quota: pods'}]}}  # fmt: skip
    found = trouble.of(refused, [])
    assert found is not None
    assert found.reason == Reason.PODS_NOT_CREATED
    assert found.message == 'FailedCreate: pods "fraud-new-abc" is forbidden: exceeded quota: pods'


def test_long_messages_are_cut() -> None:
    long = pod(NOT_READY, waiting=("CrashLoopBackOff", "x" * 1000))
    found = trouble.of(DEPLOYMENT, [long])
    assert found is not None
    assert len(found.message) == trouble.MESSAGE_LENGTH
    assert found.message.endswith("…")
