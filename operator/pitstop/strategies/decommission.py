"""`pitstop decommission`: a ModelDeployment retired for good, its archive kept.

The request ends every revision's time in service in one pass: a candidate is
Aborted, the stable (and a previous one still open) Retired, each with who asked and
why, so the archive gets their records from that very pass (`reconcile._archive`:
the entries get `endedAt` in it). `status.decommissioned` then holds, and every later
pass keeps it so, whatever the spec says: a spec change does not bring pods back; only
deleting the ModelDeployment ends it.

The drain is ordered. The pass that handles the request commits the status and routes
users to no model (`SetTraffic(stable=None)`: the entry Service selects no pod, a
mesh route sends only to that entry Service). Revisions are deleted only in a later
pass, once the traffic provider reads that routing back in place: no endpoint or
route still sends to their pods, and Kubernetes' own graceful termination lets
requests in flight finish. Deleting in the same pass would race the route update in a
mesh (Envoy would still send to a Service just deleted) and the EndpointSlice update
with the `service` provider. A provider that cannot route at all (its route is
missing) has nothing to drain through it: the revisions go at once.
"""

from __future__ import annotations

from pitstop.api.status import Decommission
from pitstop.strategies import conditions
from pitstop.strategies.conditions import Reason
from pitstop.strategies.decision import DeleteRevision, SetTraffic
from pitstop.strategies.requests import UNKNOWN_USER, Request
from pitstop.strategies.working import Rollout

# How soon to look again while the routing settles or revisions go (a watch event on
# the status or the Deployments usually comes first).
WAIT_SECONDS = 1.0


def start(r: Rollout, request: Request) -> str | None:
    """Handle the request: end every revision's service; None, or why it was refused."""
    if r.decommissioned is not None:
        return "decommission asked, but it is already decommissioned"
    by = request.by or UNKNOWN_USER
    why = reason(by, request.reason)
    if r.candidate is not None:
        r.end_candidate("Aborted", why, reject=False)
    for serving in (r.stable, r.previous):
        if serving is not None:
            r.close(serving.revision, "Retired", why)
    r.stable = r.candidate = r.previous = None
    r.rejected = None
    r.decommissioned = Decommission(at=r.now, by=by, reason=request.reason, request=request.id)
    return None


def reason(by: str, why: str) -> str:
    """The reason every ended entry (and so its archive record) gives."""
    return f"decommissioned by {by}" + (f": {why}" if why else "")


def keep(r: Rollout) -> None:
    """One pass of a decommissioned ModelDeployment: no traffic, then no revision."""
    done = r.decommissioned
    assert done is not None
    r.split = SetTraffic(stable=None)
    left = sorted(r.seen.revisions)
    traffic = r.seen.traffic
    # Verified against the status in hand: only from the pass after the request is the
    # "no traffic" routing what the provider was asked for and read back.
    off = r.md.status.decommissioned is not None and (
        traffic.verified or traffic.problem is not None
    )
    said = reason(done.by, done.reason)
    if left and off:
        r.actions += [DeleteRevision(revision) for revision in left]
        message = f"{said}; no traffic; deleting revision {', '.join(left)}"
    elif left:
        message = f"{said}; taking traffic off revision {', '.join(left)} before deleting it"
    else:
        message = (f"{said}; no traffic and no revision runs: delete the ModelDeployment "
                   "(or remove it from Git); its archive stays")  # fmt: skip
        if done.completed_at is None:
            r.decommissioned = done.model_copy(update={"completed_at": r.now})
    if left:
        r.wake.append(WAIT_SECONDS)
    r.put(conditions.READY, "False", Reason.DECOMMISSIONED, message)
    r.put(conditions.PROGRESSING, "False", Reason.DECOMMISSIONED, message)
    r.put(conditions.PAUSED, "False", Reason.NOT_PAUSED, "")
    r.put(conditions.DEGRADED, "False", Reason.AS_EXPECTED, "")
