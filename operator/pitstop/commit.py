"""What one reconcile writes about its ModelDeployment: the status, the Events, and
whether the pass itself worked (the `Reconciled` condition).

The status write is the *commit point* of a pass. It carries a resourceVersion
precondition, so a status decided from an object that has changed since it was read
(a user's edit, another replica's write) is refused with a `Conflict`, never written
over the newer one; and `reconcile` carries out a decision's actions only after its
status is committed, so an action can never run ahead of the state that justifies it
(see `reconcile.reconcile`).

A pass that raises leaves the reason where users look, not only in the operator's
log: `Reconciled=False` with reason `ReconcileError` and the error's text, the status
message, and a Warning Event (identical ones are counted on one Event, not re-posted;
see `k8s.events`). A dedicated condition rather than `Ready` or `Progressing`: a failed
pass changes neither whether the stable serves nor where the rollout stands — both
keep what the last good pass saw — and `Reconciled` turns True again after the next pass
that completes (as Crossplane's `Synced` separates "could the controller act" from
"is the resource ready").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pitstop.api.status import ConditionStatus, ModelDeploymentStatus
from pitstop.k8s import errors
from pitstop.k8s.client import KubeClient
from pitstop.strategies import conditions
from pitstop.strategies.decision import Event

log = logging.getLogger(__name__)

# The condition, and its reasons (kept here, beside the only code that sets them).
RECONCILED = "Reconciled"
RECONCILE_SUCCESS = "ReconcileSuccess"
RECONCILE_ERROR = "ReconcileError"
COMPLETED = "the last reconcile completed"


class Writer:
    """Writes one pass's outcome on the object it read, and knows what the API holds."""

    def __init__(self, kube: KubeClient, obj: dict[str, Any], now: datetime) -> None:
        self.kube, self.obj, self.now = kube, obj, now
        meta = obj["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.generation = int(meta.get("generation", 0))
        self.version: str = meta["resourceVersion"]
        self.status = parse(obj.get("status"))
        """The status the API holds, as far as this pass knows."""
        self._said = self.status.message  # the message of the pass's own decision

    def commit(self, status: ModelDeploymentStatus) -> bool:
        """Write `status` unless the API holds it already; True when written. Raises
        `errors.Conflict` when the object changed since it was read.

        While a failure stands (`Reconciled=False`, carried over by the engine), the
        status message keeps saying it until a pass completes (`succeeded`). Otherwise a
        status without `Reconciled=True` (a new object's first pass) gets it in this same
        write rather than in one more after the actions: an action that then fails sets
        it False (`failed`), before the pass ends."""
        self._said = status.message
        if _failing(self.status):
            status = status.model_copy(update={"message": self.status.message})
        elif not conditions.is_true(status.conditions, RECONCILED):
            status = _with_reconciled(status, self.generation, self.now)
        return self._write(status)

    def _write(self, status: ModelDeploymentStatus) -> bool:
        if status == self.status:
            return False
        body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.version = self.kube.patch_status(self.namespace, self.name, body, self.version)
        self.status = status
        return True

    def post(self, events: Iterable[Event]) -> None:
        for event in events:
            log.info("%s/%s %s: %s", self.namespace, self.name, event.reason, event.message)
            self.kube.post_event(self.obj, event.type, event.reason, event.message)

    def succeeded(self) -> None:
        """The pass completed: say so, if the status does not already."""
        if conditions.is_true(self.status.conditions, RECONCILED):
            return
        done = self._reconciled("True", RECONCILE_SUCCESS, COMPLETED)
        self._write(done.model_copy(update={"message": self._said}))

    def failed(self, text: str) -> None:
        """The pass raised: say why in the status and an Event. Never raises itself —
        the caller re-raises the error that matters (the work queue backs off on it)."""
        message = f"reconcile failed (retried with backoff): {text}"
        failed = self._reconciled("False", RECONCILE_ERROR, message)
        try:
            self._write(failed.model_copy(update={"message": message}))
            self.kube.post_event(self.obj, "Warning", RECONCILE_ERROR, message)
        except errors.NotLeader:
            pass  # another replica leads now: it reconciles, and reports, from here on
        except Exception as error:  # the API itself may be what failed
            log.warning("%s/%s: could not report the failure: %s",
                        self.namespace, self.name, errors.describe(error))  # fmt: skip

    def _reconciled(
        self, status: ConditionStatus, reason: str, message: str
    ) -> ModelDeploymentStatus:
        conds = conditions.set_condition(
            list(self.status.conditions), RECONCILED, status, reason, message,
            self.generation, self.now,
        )  # fmt: skip
        return self.status.model_copy(update={"conditions": conds})


def _with_reconciled(
    status: ModelDeploymentStatus, generation: int, now: datetime
) -> ModelDeploymentStatus:
    conds = conditions.set_condition(
        list(status.conditions), RECONCILED, "True", RECONCILE_SUCCESS, COMPLETED,
        generation, now,
    )  # fmt: skip
    return status.model_copy(update={"conditions": conds})


def _failing(status: ModelDeploymentStatus) -> bool:
    found = conditions.find(status.conditions, RECONCILED)
    return found is not None and found.status == "False"


def parse(status: dict[str, Any] | None) -> ModelDeploymentStatus:
    """The status as the API holds it; one this version cannot read starts afresh."""
    try:
        return ModelDeploymentStatus.model_validate(status or {})
    except ValidationError:
        return ModelDeploymentStatus()
