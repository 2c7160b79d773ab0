"""Which Event a new occurrence belongs to: identical Events are counted, not re-posted.

A reconcile that fails the same way every pass, or a decision said again after a
restart, would otherwise add one Event per pass until `kubectl describe` shows nothing
else. As client-go's recorder does (its EventCorrelator's "event logger"), an
occurrence identical to one this process already posted — same object, type, reason,
message and source — bumps that Event's `count` and `lastTimestamp` instead. The cache is
per process and bounded (least recently used first out, as client-go's 4096): after a
restart or a leader handover the first occurrence starts a new Event, and an Event the
API server has expired (its TTL, an hour by default) is created again.

Nothing here talks to the API: `KubeClient.post_event` asks `Recorder.seen` and says
what it did with `Recorder.posted`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CACHE_SIZE = 4096
MESSAGE_LIMIT = 1024  # the API server refuses longer Event messages


@dataclass(frozen=True)
class Key:
    """What makes two occurrences the same Event (client-go's getEventKey, without the
    object's resourceVersion, which every status write moves)."""

    component: str
    namespace: str
    kind: str
    name: str
    uid: str
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Posted:
    """An Event this process wrote: its name, how often it counted, since when."""

    name: str
    count: int
    first: datetime


def key(component: str, owner: dict[str, Any], type_: str, reason: str, message: str) -> Key:
    meta = owner["metadata"]
    return Key(
        component=component,
        namespace=meta.get("namespace", ""),
        kind=owner.get("kind", ""),
        name=meta["name"],
        uid=meta.get("uid", ""),
        type=type_,
        reason=reason,
        message=truncate(message),
    )


def truncate(message: str) -> str:
    return message[:MESSAGE_LIMIT]


class Recorder:
    """The Events this process posted, by key; safe to share between reconcile threads."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._posted: OrderedDict[Key, Posted] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: Key) -> Posted | None:
        """The Event an identical occurrence was counted on, if any."""
        with self._lock:
            found = self._posted.get(key)
            if found is not None:
                self._posted.move_to_end(key)
            return found

    def posted(self, key: Key, event: Posted) -> None:
        with self._lock:
            self._posted[key] = event
            self._posted.move_to_end(key)
            while len(self._posted) > self._size:
                self._posted.popitem(last=False)

    def forget(self, key: Key) -> None:
        """The Event is gone (expired): the next occurrence starts a new one."""
        with self._lock:
            self._posted.pop(key, None)
