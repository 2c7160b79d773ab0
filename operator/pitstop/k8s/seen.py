"""What the watches last showed of the operator's children, so that an apply that would
change nothing is not sent.

Every reconcile applies the children it wants: applied again unchanged, that is still a
write the API server authorizes, admits and answers (at a thousand ModelDeployments, a
load on every other tenant). `Applied` remembers, per child, the digest of what was
last applied and the version the API server gave back; `Seen` holds the version the
watch shows now. An apply is skipped only when both say nobody has written the child
since: same desired object, and the watch still shows the version Pitstop's own write
produced — for Deployments their `generation` (status updates by the Deployment
controller do not count, spec edits by anyone do), for Services and ConfigMaps their
`resourceVersion`. A child the watch has not shown, a deleted one, one edited by
someone else, or a restarted operator: applied as before. No I/O.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)


@dataclass(frozen=True)
class Version:
    resource_version: str
    generation: int | None


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])


def version_of(obj: dict[str, Any]) -> Version:
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    return Version(str(meta.get("resourceVersion") or ""), int(generation) if generation else None)


def digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def same_write(kind: str, ours: Version, now: Version) -> bool:
    """Whether the child the watch shows `now` is still the one our write left."""
    if kind == "Deployment" and ours.generation is not None:
        return now.generation == ours.generation
    return now.resource_version == ours.resource_version


class Seen:
    """The watch's latest version of each child (fed by the Kopf handlers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[Key, Version] = {}

    def record(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self._versions[key_of(obj)] = version_of(obj)

    def forget(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self._versions.pop(key_of(obj), None)

    def get(self, key: Key) -> Version | None:
        with self._lock:
            return self._versions.get(key)


class Applied:
    """What Pitstop last applied to each child, and the version that write produced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[Key, tuple[str, Version]] = {}

    def unchanged(self, obj: dict[str, Any], seen: Seen) -> bool:
        """Whether applying `obj` now would change nothing."""
        key = key_of(obj)
        with self._lock:
            last = self._last.get(key)
        now = seen.get(key)
        return (
            last is not None and now is not None and last[0] == digest(obj)
            and same_write(key[1], last[1], now)
        )  # fmt: skip

    def wrote(self, obj: dict[str, Any], result: dict[str, Any]) -> None:
        with self._lock:
            self._last[key_of(obj)] = (digest(obj), version_of(result))

    def has(self, key: Key) -> bool:
        """Whether this process has applied the child (and not deleted it since)."""
        with self._lock:
            return key in self._last

    def drop(self, key: Key) -> None:
        with self._lock:
            self._last.pop(key, None)
