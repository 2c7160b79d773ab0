"""Manual gates that survive GitOps: promote, abort, retry, undo, decommission.

`pitstop promote NAME` (and friends) writes one annotation, `pitstop.dev/request`, a
small JSON document with an id. Argo CD and Flux leave annotations they do not manage
alone (Argo CD diffs only the fields in Git; Flux's server-side apply keeps fields owned
by other managers), so self-heal does not revert the request. The operator handles a
request once and records its id in `status.lastRequest`; the annotation may stay.

Who asked is a second annotation, `pitstop.dev/requested-by`, written in the same patch
(CEL cannot read the JSON): the chart's ValidatingAdmissionPolicy lets the request
change only when it names the user the API server authenticated, so the name is the
API server's word, not the requester's. Without the policy it is whatever the writer
put there, and without the annotation the request is recorded as by `UNKNOWN_USER`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

ANNOTATION = "pitstop.dev/request"
REQUESTED_BY = "pitstop.dev/requested-by"
UNKNOWN_USER = f"unknown (no {REQUESTED_BY})"
# A reason is a sentence for the history, not a document: status must stay small.
MAX_REASON = 200
Action = Literal["promote", "abort", "retry", "undo", "decommission"]
ACTIONS: tuple[Action, ...] = ("promote", "abort", "retry", "undo", "decommission")


@dataclass(frozen=True)
class Request:
    action: Action
    id: str
    revision: str | None = None
    """For undo: the revision to go back to."""
    reason: str = ""
    """Why, in the requester's words (`--reason`)."""
    by: str | None = None
    """Who asked: the REQUESTED_BY annotation beside it (not part of the JSON)."""

    def to_annotation(self) -> str:
        body = {"action": self.action, "id": self.id}
        if self.revision is not None:
            body["revision"] = self.revision
        if self.reason:
            body["reason"] = self.reason
        return json.dumps(body, sort_keys=True)

    def annotations(self, user: str) -> dict[str, str]:
        """The request and its requester, to be written in one patch."""
        return {ANNOTATION: self.to_annotation(), REQUESTED_BY: user}


def parse(annotations: dict[str, str]) -> Request | str | None:
    """The request in `annotations`, None when there is none, or a message when malformed."""
    text = annotations.get(ANNOTATION)
    if text is None:
        return None
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return f"annotation {ANNOTATION} is not JSON: {text!r}"
    if not isinstance(body, dict):
        return f"annotation {ANNOTATION} must be a JSON object"
    action, request_id = body.get("action"), body.get("id")
    if action not in ACTIONS or not isinstance(request_id, str) or not request_id:
        return f"annotation {ANNOTATION} needs an action ({', '.join(ACTIONS)}) and an id"
    revision = body.get("revision")
    if action == "undo" and not isinstance(revision, str):
        return f"annotation {ANNOTATION}: undo needs the revision to go back to"
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        return f"annotation {ANNOTATION}: the reason must be a string"
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    by = annotations.get(REQUESTED_BY) or None
    return Request(action=action, id=request_id, revision=revision, reason=reason, by=by)
