"""What the archive keeps of a revision once it stops serving. Pure.

`status.history` is bounded for the status' sake (`strategies.history`) and goes with
its ModelDeployment; the archive is the long memory: model, version, revision, image
(and its digest), the package and training data it served when known, when it served,
how and why it ended, the last analysis figures and the manual requests about it.

Where it is kept, and why there: one ConfigMap per ModelDeployment (`<name>-archive`),
*not* owned by it, so it outlives a decommissioned or deleted ModelDeployment. It holds
at most `LIMIT` records and `MAX_BYTES` of JSON (oldest dropped first), so its size in
etcd is bounded per ModelDeployment whatever its age (etcd refuses objects past
~1.5 MiB; a ConfigMap's data past 1 MiB). A record is written only in the pass where a
revision stops serving (a few writes per rollout, none on a steady-state reconcile). A
`ModelRevision` object per revision would make `kubectl get` nicer but grows etcd's
object count and every watch cache by one object per rollout, forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from pitstop.api.base import StatusModel
from pitstop.api.status import AnalysisStatus, HistoryEntry, ModelDeploymentStatus
from pitstop.rendering import labels

LIMIT = 200
MAX_BYTES = 256 * 1024
KEY = "records.json"  # the ConfigMap's data key
ROLE = "archive"
ARCHIVE_OF = "pitstop.dev/archive-of"
# Not the children's pitstop.dev/model-deployment label: the operator's watches (and
# the memory they fill) are for objects it reconciles, and the archive is only written.


def name_of(deployment: str) -> str:
    return f"{deployment}-archive"


class Figure(StatusModel):
    """One analysis metric as it stood when the revision's rollout ended."""

    name: str
    value: float | None = None
    stable_value: float | None = None
    limit: str = ""
    verdict: str = ""
    requests: float | None = None


class Record(StatusModel):
    """One revision's time in service, as it ended."""

    namespace: str
    model_deployment: str
    model: str
    version: str
    revision: str
    image: str
    image_digest: str | None = Field(default=None, description="sha256:... when pinned.")
    package: dict[str, Any] | None = Field(
        default=None, description="Package digest and training data version, when known."
    )
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    reason: str = ""
    analysis: list[Figure] = Field(default_factory=list)
    requests: list[dict[str, Any]] = Field(
        default_factory=list, description="Manual requests about it: who, when, why."
    )

    @property
    def key(self) -> tuple[str, str]:
        return self.revision, self.started_at.isoformat() if self.started_at else ""


def _key(entry: HistoryEntry) -> tuple[str, str]:
    return entry.revision, entry.started_at.isoformat() if entry.started_at else ""


def newly_ended(before: ModelDeploymentStatus, after: ModelDeploymentStatus) -> list[HistoryEntry]:
    """History entries that stopped serving in the pass from `before` to `after`.

    An entry's `endedAt` is set once, in exactly one committed pass (a promoted entry has
    an outcome long before it ends), so each is archived once, from that pass."""
    ended_before = {_key(e) for e in before.history if e.ended_at is not None}
    return [e for e in after.history if e.ended_at is not None and _key(e) not in ended_before]


def record(
    namespace: str,
    deployment: str,
    model: str,
    entry: HistoryEntry,
    analyses: Iterable[AnalysisStatus | None] = (),
    package: dict[str, Any] | None = None,
) -> Record:
    """The archive record of `entry`; the figures come from the first of `analyses`
    (the analysis of the pass that ended it, then the one before) that judged it."""
    analysis = next((a for a in analyses if a is not None and a.revision == entry.revision), None)
    figures = [
        Figure(name=m.name, value=m.value, stable_value=m.stable_value, limit=m.limit,
               verdict=m.verdict, requests=m.requests)
        for m in (analysis.metrics if analysis is not None else [])
    ]  # fmt: skip
    dumped = entry.model_dump(mode="json", by_alias=True, exclude_none=True)
    _, _, digest = entry.image.partition("@")
    return Record(
        namespace=namespace,
        model_deployment=deployment,
        model=model,
        version=entry.version,
        revision=entry.revision,
        image=entry.image,
        image_digest=digest or None,
        package=package,
        started_at=entry.started_at,
        ended_at=entry.ended_at,
        outcome=entry.outcome,
        reason=entry.reason,
        analysis=figures,
        requests=list(dumped.get("requests") or []),
    )


def merged(kept: Sequence[Record], new: Sequence[Record]) -> list[Record]:
    """`kept` with `new` added (a record of the same revision and start replaced),
    oldest first, within `LIMIT` records and `MAX_BYTES`."""
    by_key = {r.key: r for r in kept}
    for item in new:
        by_key[item.key] = item
    records = sorted(by_key.values(), key=_age)[-LIMIT:]
    while len(records) > 1 and len(dumps(records)) > MAX_BYTES:
        records = records[1:]
    return records


def _age(record: Record) -> tuple[str, str]:
    when = record.ended_at or record.started_at
    return (when.isoformat() if when else ""), record.revision


def still_serving(status: ModelDeploymentStatus, now: datetime, reason: str) -> list[HistoryEntry]:
    """The open entries (revisions serving now), ended as Retired: what the archive
    keeps when the whole ModelDeployment goes."""
    return [
        e.model_copy(update={"ended_at": now, "outcome": "Retired", "reason": reason})
        for e in status.history
        if e.ended_at is None
    ]


def dumps(records: Sequence[Record]) -> str:
    body = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in records]
    return json.dumps(body, separators=(",", ":"))


def loads(text: str | None) -> tuple[list[Record], str | None]:
    """The records in a ConfigMap's data, and a problem when part of it was unreadable
    (the readable records are kept; an unreadable archive is never silently emptied
    by the caller without saying so)."""
    if not text:
        return [], None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        return [], f"{KEY} is not JSON: {error}"
    if not isinstance(body, list):
        return [], f"{KEY} is not a JSON list"
    records: list[Record] = []
    problem = None
    for i, item in enumerate(body):
        try:
            records.append(Record.model_validate(item))
        except ValidationError as error:
            problem = f"{KEY}[{i}]: {error.errors()[0]['msg']}"
    return records, problem


def config_map(namespace: str, deployment: str, records: Sequence[Record]) -> dict[str, Any]:
    """The archive ConfigMap, without an owner: it outlives its ModelDeployment."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name_of(deployment),
            "namespace": namespace,
            "labels": {labels.MANAGED_BY: "pitstop", labels.ROLE: ROLE, ARCHIVE_OF: deployment},
        },
        "data": {KEY: dumps(records)},
    }
