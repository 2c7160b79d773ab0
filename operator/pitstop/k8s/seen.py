"""What the watches last showed of the objects every reconcile reads — the
ModelDeployments and their child Deployments, Services and mirror ConfigMaps — so that
a reconcile reads them from memory, and an apply that would change nothing is not sent.

Reads: a reconcile used to GET its ModelDeployment, LIST its Deployments and GET its
entry Service and mirror ConfigMap on every pass — at a thousand ModelDeployments most
of the operator's requests, and each LIST filters every Deployment in the namespace.
`Seen` holds each object's latest body, fed before any handler runs by Kopf's indexing
(`handlers.py`), which also holds every handler back until the watches' initial lists
are in: so the operator never decides from an empty view (`open()` is called from those
handlers). What Pitstop writes goes in at once with the API server's answer (a write
through), so a pass right after a write reads what it wrote even before its watch event
comes; a body older than the one held (by resourceVersion) never replaces it. The
client (`client.KubeClient`) falls back to the API for a ModelDeployment not held, and
for everything while the view is not open (the CLI, the tests that drive reconciles
without a watch).

Writes: every reconcile applies the children it wants: applied again unchanged, that is
still a write the API server authorizes, admits and answers. `Applied` remembers, per
child, the digest of what was last applied and the version the API server gave back; an
apply is skipped only when both say nobody has written the child since: same desired
object, and the watch still shows the version Pitstop's own write produced — for
Deployments their `generation` (status updates by the Deployment controller do not
count, spec edits by anyone do), for Services and ConfigMaps their `resourceVersion`. A
child the watch has not shown, a deleted one, one edited by someone else, or a restarted
operator: applied as before. No I/O.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from pitstop.api import resource
from pitstop.rendering import labels

Key = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)

MODEL_DEPLOYMENT = (f"{resource.GROUP}/{resource.VERSION}", resource.KIND)
# The child kinds the operator's watches cover: those with Pitstop's labels
# (`labels.MANAGED_BY` and `labels.DEPLOYMENT`).
CHILDREN = frozenset({("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap")})


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


def watched(obj: dict[str, Any]) -> bool:
    """Whether the operator's watches show `obj` (so a copy held of it is kept current)."""
    kind = (obj.get("apiVersion"), obj.get("kind"))
    if kind == MODEL_DEPLOYMENT:
        return True
    found = (obj.get("metadata") or {}).get("labels") or {}
    return kind in CHILDREN and found.get(labels.MANAGED_BY) == "pitstop" and (
        labels.DEPLOYMENT in found
    )  # fmt: skip


def parse_selector(selector: str) -> dict[str, str] | None:
    """An equality-only label selector (`a=b,c=d`) as a dict; None for anything else
    (the caller asks the API server instead)."""
    terms: dict[str, str] = {}
    for term in selector.split(","):
        name, sep, value = term.partition("=")
        if not sep or value.startswith("=") or name.endswith("!") or not name.strip():
            return None
        terms[name.strip()] = value.strip()
    return terms


def _number(resource_version: str) -> int | None:
    try:
        return int(resource_version)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Held:
    """One object as held: what is looked up without parsing it, and its body as JSON
    (a few KB, where the parsed dict would take several times that: at a thousand
    ModelDeployments that is tens of MB of the operator's memory)."""

    version: Version
    labels: dict[str, str]
    raw: bytes

    def older_than(self, incoming: Version) -> bool:
        """Whether `incoming` is older than this. resourceVersions are opaque to clients
        by contract; the API server's are etcd revisions, so they are compared as
        numbers when both are, and otherwise the incoming one wins (as a watch would)."""
        ours, theirs = _number(self.version.resource_version), _number(incoming.resource_version)
        return ours is not None and theirs is not None and theirs < ours

    @property
    def owner(self) -> str:
        return self.labels.get(labels.DEPLOYMENT, "")


class Seen:
    """The watches' latest body of each object they cover (fed by the Kopf handlers)
    and of Pitstop's own writes to them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, _Held] = {}
        self._owned: dict[Key, set[Key]] = {}  # (apiVersion, kind, namespace, owner): keys
        self._open = False

    def open(self) -> None:
        """The watches' initial lists are all in: reads may be served from here."""
        self._open = True

    @property
    def serving(self) -> bool:
        return self._open

    def record(self, obj: dict[str, Any]) -> None:
        """Hold `obj` unless the body held is newer. managedFields are dropped: nothing
        reads them from here."""
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
        key = key_of({**obj, "metadata": meta})
        version = version_of({"metadata": meta})
        with self._lock:
            held = self._objects.get(key)
        if held is not None and held.older_than(version):
            return  # cheap check first: no encoding of what will not be kept
        raw = json.dumps({**obj, "metadata": meta}, separators=(",", ":")).encode()
        new = _Held(version, dict(meta.get("labels") or {}), raw)
        with self._lock:
            held = self._objects.get(key)
            if held is not None and held.older_than(version):
                return
            if held is not None:
                self._unown(key, held)
            self._objects[key] = new
            self._owned.setdefault((*key[:3], new.owner), set()).add(key)

    def forget(self, obj: dict[str, Any]) -> None:
        self.drop(key_of(obj))

    def drop(self, key: Key) -> None:
        with self._lock:
            held = self._objects.pop(key, None)
            if held is not None:
                self._unown(key, held)

    def _unown(self, key: Key, held: _Held) -> None:
        owner = (*key[:3], held.owner)
        keys = self._owned.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._owned[owner]

    def get(self, key: Key) -> Version | None:
        with self._lock:
            held = self._objects.get(key)
        return None if held is None else held.version

    def body(self, key: Key) -> dict[str, Any] | None:
        """The object held, the caller's to change."""
        with self._lock:
            held = self._objects.get(key)
        return None if held is None else _parsed(held)

    def select(
        self, api_version: str, kind: str, namespace: str, selector: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The objects of a kind in a namespace whose labels match, by name; the selector
        must name the owner (`labels.DEPLOYMENT`), as every one Pitstop uses does."""
        owner = (api_version, kind, namespace, selector[labels.DEPLOYMENT])
        with self._lock:
            candidates = [(key, self._objects[key]) for key in self._owned.get(owner, ())]
        return [
            _parsed(one) for _, one in sorted(candidates, key=lambda pair: pair[0])
            if all(one.labels.get(name) == value for name, value in selector.items())
        ]  # fmt: skip


def _parsed(held: _Held) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(held.raw)
    return found


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
