"""Condition types, reasons, and the helper that sets one condition in a list.

`lastTransitionTime` moves only when a condition's status really changes, as
Kubernetes conventions require; reason and message may change without a transition.
"""

from __future__ import annotations

from datetime import datetime

from pitstop.api.status import Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
PAUSED = "Paused"
IMAGE_BUILT = "ImageBuilt"
# spec.monitoring: True while a monitored metric of the stable stays beyond its max.
RETRAINING_RECOMMENDED = "RetrainingRecommended"


class Reason:
    """Reasons are constants so programs (and tests) can match on them."""

    INVALID_SPEC = "InvalidSpec"
    BEYOND_LIMIT = "MetricBeyondLimit"  # RetrainingRecommended: which metric, in the message
    WITHIN_LIMITS = "WithinLimits"
    STABLE_AVAILABLE = "StableAvailable"
    STABLE_UNAVAILABLE = "StableUnavailable"
    NO_STABLE = "NoStableRevision"
    ROLLOUT_STARTED = "RolloutStarted"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    ROLLOUT_COMPLETE = "RolloutComplete"
    WAITING_FOR_PODS = "WaitingForCandidatePods"
    WAITING_FOR_TRAFFIC = "WaitingForTraffic"
    AWAITING_PROMOTION = "AwaitingPromotion"
    AWAITING_APPROVAL = "AwaitingApproval"  # spec.approval: Required
    NOT_PAUSED = "NotPaused"
    STEP_ADVANCED = "StepAdvanced"
    SHADOW_STARTED = "ShadowStarted"
    PREVIEW = "Preview"
    AS_EXPECTED = "AsExpected"
    ANALYSIS_FAILED = "AnalysisFailed"
    IMAGE_PROVIDED = "ImageProvided"
    BUILDING = "Building"
    BUILD_UNAVAILABLE = "BuildUnavailable"
    TRAFFIC_UNAVAILABLE = "TrafficUnavailable"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"
    CANCELLED = "Cancelled"
    REJECTED = "RevisionRejected"
    RETIRED = "Retired"
    RETRY = "RetryRequested"
    UNDO = "UndoRequested"
    RESTORED = "Restored"
    DECOMMISSIONED = "Decommissioned"
    BAD_REQUEST = "InvalidRequest"
    SMOKE_TEST = "SmokeTest"
    SMOKE_FAILED = "SmokeTestFailed"
    INSUFFICIENT_EVIDENCE = "InsufficientEvidence"
    INCONCLUSIVE_PROMOTED = "PromotedWithoutVerdict"
    NOTIFY_FAILED = "NotificationUnavailable"
    # spec.progressDeadline passed without the ready pods a revision needs; the reason
    # names the cause the pods (or their Deployment) show.
    PODS_NOT_CREATED = "PodsNotCreated"
    PODS_UNSCHEDULABLE = "PodsUnschedulable"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    PODS_CRASH_LOOPING = "PodsCrashLooping"
    PODS_NOT_READY = "PodsNotReady"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"  # the pods say nothing more


# Reasons of a revision stalled past its progress deadline.
STALLED = frozenset(
    {
        Reason.PODS_NOT_CREATED,
        Reason.PODS_UNSCHEDULABLE,
        Reason.IMAGE_PULL_FAILED,
        Reason.PODS_CRASH_LOOPING,
        Reason.PODS_NOT_READY,
        Reason.PROGRESS_DEADLINE_EXCEEDED,
    }
)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Return `conditions` with `type_` set; other conditions keep their order."""
    previous = find(conditions, type_)
    since = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def remove(conditions: list[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    condition = find(conditions, type_)
    return condition is not None and condition.status == "True"


def text(conditions: list[Condition], type_: str) -> str:
    """A condition's message, or "" when it is not set."""
    condition = find(conditions, type_)
    return condition.message if condition is not None else ""
