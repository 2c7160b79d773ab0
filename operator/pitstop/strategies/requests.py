"""Manual gates that survive GitOps: promote, abort, retry, undo.

`pitstop promote NAME` (and friends) writes one annotation, `pitstop.dev/request`, a
small JSON document with an id. Argo CD and Flux leave annotations they do not manage
alone (Argo CD diffs only the fields in Git; Flux's server-side apply keeps fields owned
by other managers), so self-heal does not revert the request. The operator handles a
request once and records its id in `status.lastRequest`; the annotation may stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

ANNOTATION = "pitstop.dev/request"
Action = Literal["promote", "abort", "retry", "undo"]
ACTIONS: tuple[Action, ...] = ("promote", "abort", "retry", "undo")


@dataclass(frozen=True)
class Request:
    action: Action
    id: str
    revision: str | None = None
    """For undo: the revision to go back to."""

    def to_annotation(self) -> str:
        body = {"action": self.action, "id": self.id}
        if self.revision is not None:
            body["revision"] = self.revision
        return json.dumps(body, sort_keys=True)


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
    return Request(action=action, id=request_id, revision=revision)
