"""The governance trail: each manual request, as handled, kept where its revision's
story is told.

A request (`pitstop promote|abort|retry|undo|decommission`) is recorded with who asked,
when it was handled, why, and whether it was done or refused, on the history entry of
the revision it concerns: the candidate's for promote and abort, the rejected revision's
for retry, the target's for undo, and every revision it ends for decommission (the
stable, and a candidate), so each archived record tells who retired it. A candidate has no history entry until its rollout ends, so its
requests ride on it (`RevisionStatus.requests`) and move to its entry then
(`Rollout.record`). A request about no revision (a promote with nothing rolling out)
goes onto the newest entry. Each place keeps the last `KEPT` requests, so the status
stays bounded however often someone asks.
"""

from __future__ import annotations

from datetime import datetime

from pitstop.api.status import ManualRequest, RevisionStatus
from pitstop.strategies import requests
from pitstop.strategies.requests import Request
from pitstop.strategies.working import Rollout

KEPT = 10


def about(r: Rollout, request: Request) -> list[str | None]:
    """The revisions `request` concerns, as things stand before it is handled."""
    if request.action in ("promote", "abort"):
        return [r.candidate.revision if r.candidate is not None else None]
    if request.action == "retry":
        return [r.rejected]
    if request.action == "decommission":
        ended: list[str | None] = [x.revision for x in (r.stable, r.candidate) if x is not None]
        return ended if ended and r.decommissioned is None else [None]
    return [request.revision]


def entry(request: Request, now: datetime, refusal: str | None) -> ManualRequest:
    return ManualRequest(
        action=request.action, id=request.id, by=request.by or requests.UNKNOWN_USER,
        at=now, reason=request.reason, result="Refused" if refusal else "Done",
        message=refusal or "",
    )  # fmt: skip


def asked(request: Request) -> str:
    """Who asked and why, for the Event that tells of the request."""
    why = f": {request.reason}" if request.reason else ""
    return f"(by {request.by or requests.UNKNOWN_USER}{why})"


def keep(r: Rollout, revision: str | None, record: ManualRequest) -> None:
    """Put `record` where `revision`'s story is told (see the module docstring)."""
    candidate = r.candidate
    if candidate is not None and candidate.revision == revision:
        r.candidate = candidate.model_copy(update={"requests": _added(candidate.requests, record)})
        return
    index = next(
        (i for i in reversed(range(len(r.history))) if r.history[i].revision == revision),
        len(r.history) - 1,
    )
    if index >= 0:
        found = r.history[index]
        r.history[index] = found.model_copy(update={"requests": _added(found.requests, record)})
    elif candidate is not None:  # nothing served yet: the first revision's rollout
        r.candidate = candidate.model_copy(update={"requests": _added(candidate.requests, record)})


def settled(revision: RevisionStatus | None) -> RevisionStatus | None:
    """A stable (or previous) revision without the requests it carried as a candidate:
    they are in its history entry now."""
    if revision is None or revision.requests is None:
        return revision
    return revision.model_copy(update={"requests": None})


def _added(kept: list[ManualRequest] | None, record: ManualRequest) -> list[ManualRequest]:
    return [*(kept or []), record][-KEPT:]
