"""Every version of chosen objects, read from etcd itself, in the order it stored them.

A watch through the API server ends with the API server: restarted, it fills its watch
cache from the present, and a watch resumed from an older resourceVersion is refused
(410 Gone), so what was written in between would be lost. The eye of a test that
restarts the API server must not blink: this one watches etcd, which keeps running,
from a start revision on, and sees every write once with its etcd revision. That
revision is the resourceVersion the API hands out, one counter for every resource, so
versions of different objects are ordered with each other (a route written after a
status has the greater revision).

Custom resources are stored as JSON and read as stored. Built-in kinds are stored as
protobuf, so each of their versions is read back through the API server at exactly its
revision (a list with `resourceVersionMatch=Exact`, answered from etcd's history), once
the API server answers again when it is the one restarting. Admin credentials: this is
the test's eye, not the operator's.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import threading
import time
from typing import Any

import httpx
import local_http
from pitstop.devcluster import certs, testing

Object = dict[str, Any]
PROTOBUF = b"k8s\x00"  # how the API server's protobuf encoding starts


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of namespaced object: where etcd keeps it and where the API lists it."""

    name: str
    key: str  # etcd key prefix of one namespace's objects, `{ns}` filled in
    path: str  # the API's collection in one namespace, `{ns}` filled in


DEPLOYMENT = Kind("Deployment", "/registry/deployments/{ns}/",
                  "/apis/apps/v1/namespaces/{ns}/deployments")  # fmt: skip
SERVICE = Kind("Service", "/registry/services/specs/{ns}/", "/api/v1/namespaces/{ns}/services")
CONFIG_MAP = Kind("ConfigMap", "/registry/configmaps/{ns}/", "/api/v1/namespaces/{ns}/configmaps")
LEASE = Kind("Lease", "/registry/leases/{ns}/",
             "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases")  # fmt: skip
MODEL_DEPLOYMENT = Kind("ModelDeployment", "/registry/pitstop.dev/modeldeployments/{ns}/",
                        "/apis/pitstop.dev/v1alpha1/namespaces/{ns}/modeldeployments")  # fmt: skip
HTTP_ROUTE = Kind("HTTPRoute", "/registry/gateway.networking.k8s.io/httproutes/{ns}/",
                  "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes")  # fmt: skip
VIRTUAL_SERVICE = Kind("VirtualService", "/registry/networking.istio.io/virtualservices/{ns}/",
                       "/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Version:
    """One write: the object as stored at `revision` (None when it was deleted)."""

    revision: int
    kind: str
    namespace: str
    name: str
    obj: Object | None


def admin_client(cluster: testing.DevCluster) -> httpx.Client:
    """An HTTP client of the API server with the cluster admin's certificate."""
    pki = certs.Pki.at(cluster.state_dir / "pki")
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
    return httpx.Client(base_url=cluster.server, verify=context, timeout=5)


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def _range_end(prefix: str) -> str:
    """The first key after every key that starts with `prefix` (etcd's prefix range)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Recorder:
    """Records every version of the objects of `watched` (kind, namespace) from now on,
    starting with each one as it is now."""

    def __init__(self, cluster: testing.DevCluster, watched: list[tuple[Kind, str]]) -> None:
        self._etcd = f"http://127.0.0.1:{cluster.info.ports['etcd']}"
        self._api = admin_client(cluster)
        self._watched = watched
        self._lock = threading.Lock()
        self._versions: list[Version] = []
        self._seen: set[tuple[str, int]] = set()  # (etcd key, revision)
        self.errors: list[str] = []
        self._stop = threading.Event()
        # Every object as it is at one revision, then every write after it.
        self.start = int(self._range("/registry/", keys_only=True, limit=1)["header"]["revision"])
        for kind, namespace in watched:
            found = self._range(kind.key.format(ns=namespace), revision=self.start)
            for kv in found.get("kvs", []):
                self._record(kind, namespace, kv, deleted=False)
        self._threads = [
            threading.Thread(target=self._watch, args=(kind, namespace), daemon=True)
            for kind, namespace in watched
        ]
        for thread in self._threads:
            thread.start()

    # --- reading what was recorded ---------------------------------------------------

    def versions(self, kind: Kind | None = None, name: str | None = None) -> list[Version]:
        """Versions recorded so far, in etcd's order; of one kind, and one name, if given."""
        with self._lock:
            found = sorted(self._versions, key=lambda v: v.revision)
        return [v for v in found
                if (kind is None or v.kind == kind.name) and (name is None or v.name == name)]  # fmt: skip

    def caught_up(self, timeout: float = 60.0) -> None:
        """Wait until the latest version of every watched object is recorded: etcd sends
        a watch's events in order, so every earlier one is recorded too."""
        deadline = time.monotonic() + timeout
        for kind, namespace in self._watched:
            found = self._range(kind.key.format(ns=namespace), keys_only=True)
            latest = {(base64.b64decode(kv["key"]).decode(), int(kv["mod_revision"]))
                      for kv in found.get("kvs", [])}  # fmt: skip
            while True:
                with self._lock:
                    missing = latest - self._seen
                if self.errors:
                    raise AssertionError(f"the etcd recorder failed: {self.errors}")
                if not missing:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"the etcd recorder never saw {sorted(missing)[:5]}")
                time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._api.close()

    # --- etcd ------------------------------------------------------------------------

    def _range(
        self, prefix: str, *, keys_only: bool = False, revision: int = 0, limit: int = 0
    ) -> Object:
        body = {"key": _b64(prefix), "range_end": _b64(_range_end(prefix)),
                "keys_only": keys_only, "revision": str(revision), "limit": str(limit)}  # fmt: skip
        response = local_http.post(f"{self._etcd}/v3/kv/range", json=body, timeout=10)
        response.raise_for_status()
        found: Object = response.json()
        return found

    def _watch(self, kind: Kind, namespace: str) -> None:
        prefix = kind.key.format(ns=namespace)
        after = self.start
        while not self._stop.is_set():
            body = {"create_request": {"key": _b64(prefix), "range_end": _b64(_range_end(prefix)),
                                       "start_revision": str(after + 1)}}  # fmt: skip
            try:
                # A quiet watch is opened again from where it was every few seconds,
                # so that `close` is heard; etcd resumes it exactly there.
                timeout = httpx.Timeout(10.0, read=2.0)
                with local_http.stream("POST", f"{self._etcd}/v3/watch", json=body,
                                       timeout=timeout) as response:  # fmt: skip
                    for line in response.iter_lines():
                        result = json.loads(line).get("result") or {}
                        if result.get("canceled") or result.get("compact_revision"):
                            raise RuntimeError(f"etcd cancelled the watch on {prefix}: {result}")
                        for event in result.get("events", []):
                            deleted = event.get("type") == "DELETE"
                            after = self._record(kind, namespace, event["kv"], deleted=deleted)
                        if self._stop.is_set():
                            return
            except httpx.ReadTimeout:
                continue
            except Exception as error:  # the test reads these, and fails on them
                with self._lock:
                    self.errors.append(f"{kind.name} in {namespace}: {error!r}")
                return

    def _record(self, kind: Kind, namespace: str, kv: Object, *, deleted: bool) -> int:
        key = base64.b64decode(kv["key"]).decode()
        revision = int(kv["mod_revision"])
        name = key.rsplit("/", 1)[1]
        obj = None if deleted else self._decode(kind, namespace, name, revision, kv)
        with self._lock:
            self._versions.append(Version(revision, kind.name, namespace, name, obj))
            self._seen.add((key, revision))
        return revision

    def _decode(self, kind: Kind, namespace: str, name: str, revision: int, kv: Object) -> Object:
        raw = base64.b64decode(kv.get("value", ""))
        if raw.startswith(PROTOBUF):
            return self._read_back(kind, namespace, name, revision)
        obj: Object = json.loads(raw)
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        return obj

    # --- the API server, for protobuf ------------------------------------------------

    def _read_back(self, kind: Kind, namespace: str, name: str, revision: int) -> Object:
        """The object as it was at `revision`, through the API server; while the API
        server restarts, asked again until it answers."""
        params = {"fieldSelector": f"metadata.name={name}", "resourceVersion": str(revision),
                  "resourceVersionMatch": "Exact"}  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                response = self._api.get(kind.path.format(ns=namespace), params=params)
                if response.status_code == 200:
                    items: list[Object] = response.json()["items"]
                    if len(items) != 1:
                        raise RuntimeError(f"{kind.name} {name} at {revision}: {len(items)} items")
                    return items[0]
                if response.status_code not in (429, 500, 503, 504):
                    raise RuntimeError(f"reading {kind.name} {name} at {revision}: "
                                       f"{response.status_code} {response.text[:300]}")  # fmt: skip
            except httpx.TransportError:
                pass  # the API server is away: it restarts
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server never gave {kind.name} {name} at {revision}")
            time.sleep(0.2)
