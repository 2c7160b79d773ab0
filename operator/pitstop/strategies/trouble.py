"""Why a revision's pods are not ready, read from what the API holds for them.

The reconciler lists the pods of a revision short of ready pods and hands them here
with their Deployment; this module only reads those objects (no I/O). What it returns
becomes the reason of the condition when the progress deadline passes, so it names the
cause in the API's own words: the Deployment's `ReplicaFailure` (pods not even created:
a quota, an admission refusal), the scheduler's `PodScheduled=False, Unschedulable`,
and the kubelet's container waiting reasons (`ImagePullBackOff`, `CrashLoopBackOff`,
...). When pods differ, the cause that blocks earliest in a pod's life wins.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import PodTrouble

Object = dict[str, Any]

# The kubelet's waiting reasons, by the cause they tell.
IMAGE_PULL = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
     "RegistryUnavailable", "SignatureValidationFailed"}
)  # fmt: skip
CRASHING = frozenset({"CrashLoopBackOff", "RunContainerError", "StartError"})
# Normal steps of a starting pod: not a cause by themselves.
STARTING = frozenset({"ContainerCreating", "PodInitializing"})
# Earliest first: a pod that cannot be scheduled never gets to pull its image.
_ORDER = (
    Reason.PODS_UNSCHEDULABLE,
    Reason.IMAGE_PULL_FAILED,
    Reason.PODS_CRASH_LOOPING,
    Reason.PODS_NOT_READY,
)
MESSAGE_LENGTH = 240


def of(deployment: Object, pods: list[Object]) -> PodTrouble | None:
    """What keeps `deployment`'s pods from being ready, or None if nothing says."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            why = f"{condition.get('reason', 'FailedCreate')}: {condition.get('message', '')}"
            return PodTrouble(Reason.PODS_NOT_CREATED, _short(why))
    found: dict[str, list[tuple[str, str]]] = {}
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    for pod in live:
        cause = _cause(pod)
        if cause is not None:
            found.setdefault(cause[0], []).append(cause[1:])
    for reason in _ORDER:
        if reason in found:
            words = Counter(what for what, _ in found[reason]).most_common(1)[0][0]
            detail = next(text for what, text in found[reason] if what == words)
            count = len(found[reason])
            text = f"{count}/{len(live)} pods {words}" + (f": {detail}" if detail else "")
            return PodTrouble(reason, _short(text))
    return None


def _cause(pod: Object) -> tuple[str, str, str] | None:
    """(Reason, the API's word, its message) for one pod that is not ready."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get("Ready") or {}).get("status") == "True":
        return None
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        word = scheduled.get("reason") or "Unschedulable"
        return Reason.PODS_UNSCHEDULABLE, word, scheduled.get("message", "")
    containers = [*(status.get("initContainerStatuses") or []),
                  *(status.get("containerStatuses") or [])]  # fmt: skip
    waiting = [(c.get("state") or {}).get("waiting") or {} for c in containers]
    for word, message in ((w.get("reason", ""), w.get("message", "")) for w in waiting):
        if word in IMAGE_PULL:
            return Reason.IMAGE_PULL_FAILED, word, message
        if word in CRASHING:
            return Reason.PODS_CRASH_LOOPING, word, message
        if word and word not in STARTING:
            return Reason.PODS_NOT_READY, word, message
    if any("running" in (c.get("state") or {}) and not c.get("ready") for c in containers):
        return Reason.PODS_NOT_READY, "running but not ready", "its readiness probe fails"
    return None


def _short(text: str) -> str:
    return text if len(text) <= MESSAGE_LENGTH else text[: MESSAGE_LENGTH - 1] + "…"
