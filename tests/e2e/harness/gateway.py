"""The gateway's part: steady user traffic on the stable entry, split as the API says.

Every `ROUTE_POLL` the gateway reads what the operator wrote and turns it into a
routing table; each request then follows the table of its moment (with
`through_service`, on a real node, requests go to the entry Service's ClusterIP
instead, and kube-proxy chooses: see below):

- `service` provider: the entry Service's selector picks the Running, non-terminating,
  Ready pods (as an EndpointSlice would list them; see kubelet for readiness), and
  requests go round-robin over them, so a revision's share is its share of pods;
- `gateway-api`: the HTTPRoute's first rule that has backendRefs: a smooth weighted
  round-robin over its backend Services (weights as written, absent = 1), then
  round-robin over each Service's ready pods; its RequestMirror filter copies
  `percent` of requests (deterministically spread) to the mirror Service's pods,
  sent alongside the user's request; the copy's answer is recorded, never returned.

Load is `rps` requests a second on a fixed schedule (a late request is not made up
with a burst), each a valid row from `rows`: a `/predict` body, or with
`protocol="v2"` an Open Inference Protocol request (one tensor per feature) to
`/v2/models/{model}/infer`. Every request is recorded (`Record`), and
every change of the table (`Change`, with each revision's share), so tests count what
a revision answered and see when a revision's share reached 0.

`through_service=True` (the `service` provider on a real node) sends every user
request to the entry Service's ClusterIP, as a client in the cluster would: the real
kube-proxy picks the pod, from the EndpointSlices the real kubelet's probes fill. Each
request opens its own connection, as many users do: kube-proxy balances connections,
so one kept-alive connection would stay on one pod whatever the split. Who answered is
read off the answer: the serving template names the package's version on every
prediction answer (`x-pitstop-model-version`), and the revision when the operator
gives it one (`x-pitstop-revision`; else the revision whose pods carry that version). A
request that got no answer names no version, so it is counted for none. The table is
still read, for `share_now` and the changes tests look at.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import local_http
from pitstop.devcluster import testing

from harness import kubelet as kubelet_
from harness.listing import Listing

log = logging.getLogger(__name__)

Object = dict[str, Any]
ROUTE_POLL = 0.1  # seconds between two reads of the API (a period, not a synchronisation)
REVISION = "pitstop.dev/revision"
VERSION = "pitstop.dev/model-version"
NO_BACKEND = 503  # what a gateway answers when no endpoint is ready
# How long a Service's data plane takes to follow a change the table shows: the
# EndpointSlice controller, then kube-proxy's next sync of its iptables rules (about a
# second measured on an idle node; more with 2 busy cores).
SERVICE_SETTLE = 3.0


@dataclasses.dataclass(frozen=True)
class Pod:
    name: str
    url: str  # http://ip:port
    revision: str
    version: str


@dataclasses.dataclass(frozen=True)
class Table:
    """Where requests go: weighted backends (each a list of pods) and a mirror."""

    backends: tuple[tuple[int, tuple[Pod, ...]], ...] = ()
    mirror: tuple[Pod, ...] = ()
    mirror_percent: int = 0

    def shares(self) -> dict[str, float]:
        """Each revision's share of user requests, in percent."""
        live = [(w, pods) for w, pods in self.backends if w > 0 and pods]
        total = sum(w for w, _ in live)
        shares: dict[str, float] = {}
        for weight, pods in live:
            for pod in pods:
                shares[pod.revision] = shares.get(pod.revision, 0.0) + 100 * weight / total / len(
                    pods
                )
        return shares


@dataclasses.dataclass(frozen=True)
class Record:
    sent: float  # time.monotonic() when sent
    pod: str | None  # the pod sent to, or the entry Service's (through_service)
    revision: str | None
    version: str | None
    status: int  # 0: no answer (connection failed, timeout)
    latency: float
    mirrored: bool = False  # a copy made by the gateway's RequestMirror
    request_id: str | None = None  # the answer's x-request-id
    row: dict[str, Any] | None = None  # what was asked (for feedback with its truth)
    outputs: tuple[str, ...] | None = None  # a V2 answer's output names


@dataclasses.dataclass(frozen=True)
class Change:
    at: float
    shares: dict[str, float]
    mirror: dict[str, float]


class Gateway:
    """Load on one ModelDeployment's entry; a context manager."""

    def __init__(
        self,
        cluster: testing.DevCluster,
        namespace: str,
        entry: str,
        rows: Iterator[dict[str, Any]],
        *,
        rps: float = 20.0,
        http_route: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        protocol: str = "native",
        model: str = "fraud",
        through_service: bool = False,
        listing: Listing | None = None,
    ) -> None:
        if through_service and http_route is not None:
            raise ValueError("through_service is the service provider's entry, not a route's")
        self.cluster, self.namespace, self.entry = cluster, namespace, entry
        self.through_service = through_service
        # Seconds after a change of the table until every request follows it: none
        # where this gateway routes by the table itself.
        self.settle = SERVICE_SETTLE if through_service else 0.0
        self.service: Pod | None = None  # the entry Service's ClusterIP, once it has one
        self.revisions: dict[str, str] = {}  # version -> revision, of every pod seen
        self.rows = rows
        self.rps, self.http_route = rps, http_route
        self.headers = dict(headers or {})
        self.timeout = timeout
        if protocol not in ("native", "v2"):
            raise ValueError(f"protocol is native or v2, not {protocol!r}")
        self.path = "/predict" if protocol == "native" else f"/v2/models/{model}/infer"
        self.records: list[Record] = []
        self.changes: list[Change] = []
        self.table = Table()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, name="gateway-routes", daemon=True),
            threading.Thread(target=self._load, name="gateway-load", daemon=True),
        ]
        # The namespace's pods and Services: the kubelet's, or this gateway's own.
        self.listing = listing or Listing(cluster, namespace)
        self._round = itertools.count()
        self._posts = itertools.count()
        self._current = [0] * 0
        self._mirror_credit = 0

    # --- what tests ask -------------------------------------------------------------

    def answered(self, *, version: str | None = None, since: float = 0.0) -> list[Record]:
        """User requests (not mirror copies) sent after `since`, by `version` if given."""
        return [
            r
            for r in list(self.records)
            if not r.mirrored and r.sent >= since and (version is None or r.version == version)
        ]

    def share_now(self, version: str) -> float:
        table = self.table
        revisions = {p.revision for _, pods in table.backends for p in pods if p.version == version}
        return sum(v for k, v in table.shares().items() if k in revisions)

    def last_change_to_zero(self, revision: str) -> Change | None:
        """The table change after which `revision` got no more user traffic."""
        found: Change | None = None
        for change in list(self.changes):
            if change.shares.get(revision, 0.0) > 0:
                found = None
            elif found is None:
                found = change
        return found

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Reads the routes once before the first request, as a gateway loads its
        configuration before it listens: load sent before that would meet an empty
        table and count as 503s no user of a real gateway ever sees."""
        self._refresh()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def post(self, path: str, body: Any) -> httpx.Response:
        """POST `body` to `path` on one of the entry's pods, as a user's client would
        through the entry (any pod, of any revision the table routes to)."""
        pods = [p for _, found in self.table.backends for p in found]
        if self.through_service:
            pods = [self.service] if self.service is not None else []
        if not pods:
            raise RuntimeError("no pod to send to")
        pod = pods[next(self._posts) % len(pods)]
        return local_http.post(f"{pod.url}{path}", json=body, headers=self.headers,
                               timeout=self.timeout)  # fmt: skip

    # --- following the API ----------------------------------------------------------

    def _pods_of(
        self, service: str, services: Mapping[str, Object], pods: list[Object]
    ) -> tuple[Pod, ...]:
        found = services.get(service)
        if found is None:
            return ()
        selector = found["spec"].get("selector") or {}
        port = (found["spec"].get("ports") or [{}])[0]
        chosen = []
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            meta = pod["metadata"]
            if not (kubelet_.is_ready(pod) and kubelet_.selects(selector, pod)):
                continue
            target = kubelet_.container_port(pod, port.get("targetPort", port.get("port")))
            labels = meta.get("labels") or {}
            chosen.append(
                Pod(
                    meta["name"],
                    f"http://{pod['status']['podIP']}:{target}",
                    labels.get(REVISION, ""),
                    labels.get(VERSION, ""),
                )
            )
        return tuple(chosen)

    def _cluster_ip(self, service: Object | None) -> Pod | None:
        spec = (service or {}).get("spec") or {}
        if spec.get("clusterIP") in (None, "", "None") or not spec.get("ports"):
            return None
        url = f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"
        return Pod(f"service/{self.entry}", url, "", "")

    def _read_table(self) -> Table:
        seen = self.listing.read(max_age=ROUTE_POLL)
        pods, services = seen.pods, seen.services
        if self.through_service:
            self.service = self._cluster_ip(services.get(self.entry))
        if self.http_route is None:
            return Table(backends=((1, self._pods_of(self.entry, services, pods)),))
        route = self.cluster.get("httproute", self.http_route, namespace=self.namespace)
        rules = [
            r for r in ((route or {}).get("spec") or {}).get("rules") or [] if r.get("backendRefs")
        ]
        if not rules:
            return Table()
        rule = rules[0]
        backends = tuple(
            (int(ref.get("weight", 1)), self._pods_of(ref["name"], services, pods))
            for ref in rule["backendRefs"]
        )
        for filter_ in rule.get("filters") or []:
            if filter_.get("type") == "RequestMirror":
                spec = filter_["requestMirror"]
                ref = spec["backendRef"]
                percent = int(spec.get("percent", 100))
                return Table(backends, self._pods_of(ref["name"], services, pods), percent)
        return Table(backends)

    def _watch(self) -> None:
        while not self._stop.wait(ROUTE_POLL):
            self._refresh()

    def _refresh(self) -> None:
        try:
            table = self._read_table()
        except Exception:
            log.exception("gateway could not read the routes")
            return
        if self.through_service:  # who answered is read off the answer: its revision
            for _, pods in table.backends:
                self.revisions.update((p.version, p.revision) for p in pods)
        if table != self.table:
            self.table = table
            mirror = {p.revision: 100.0 / len(table.mirror) for p in table.mirror}
            self.changes.append(Change(time.monotonic(), table.shares(), mirror))

    # --- choosing and sending -------------------------------------------------------

    def _choose(self, table: Table) -> tuple[Pod | None, Pod | None]:
        if self.through_service:
            return self.service, None  # kube-proxy chooses; no mirror on a Service
        live = [(w, pods) for w, pods in table.backends if w > 0 and pods]
        if not live:
            return None, None
        # Smooth weighted round-robin (nginx's): deterministic, spreads each backend.
        if len(self._current) != len(live):
            self._current = [0] * len(live)
        total = sum(w for w, _ in live)
        for i, (weight, _) in enumerate(live):
            self._current[i] += weight
        best = max(range(len(live)), key=lambda i: self._current[i])
        self._current[best] -= total
        turn = next(self._round)
        pods = live[best][1]
        pod = pods[turn % len(pods)]
        copy = None
        if table.mirror and table.mirror_percent > 0:
            self._mirror_credit += table.mirror_percent
            if self._mirror_credit >= 100:
                self._mirror_credit -= 100
                copy = table.mirror[turn % len(table.mirror)]
        return pod, copy

    async def _send(
        self, client: httpx.AsyncClient, pod: Pod | None, body: bytes, mirrored: bool
    ) -> None:
        sent = time.monotonic()
        if pod is None:
            self.records.append(Record(sent, None, None, None, NO_BACKEND, 0.0, mirrored))
            return
        request_id = None
        outputs: tuple[str, ...] | None = None
        revision: str | None = pod.revision
        version: str | None = pod.version
        try:
            answer = await client.post(f"{pod.url}{self.path}", content=body)
            status = answer.status_code
            request_id = answer.headers.get("x-request-id")
            if self.through_service:
                version = answer.headers.get("x-pitstop-model-version")
                revision = answer.headers.get("x-pitstop-revision") or self.revisions.get(
                    version or ""
                )
            if status == 200 and self.path != "/predict":
                outputs = tuple(o["name"] for o in answer.json()["outputs"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            status = 0  # no answer, or a 200 that is no V2 answer
        row = row_of(json.loads(body)) if status == 200 and not mirrored else None
        self.records.append(
            Record(
                sent, pod.name, revision, version, status, time.monotonic() - sent,
                mirrored, request_id, row, outputs,
            )
        )  # fmt: skip

    async def _schedule(self) -> None:
        headers = {"Content-Type": "application/json", **self.headers}
        # Through a Service, a connection per request (see the module's docstring).
        keep = 0 if self.through_service else 32
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=keep)
        async with httpx.AsyncClient(
            headers=headers, timeout=self.timeout, limits=limits
        ) as client:
            tasks: set[asyncio.Task[None]] = set()
            period = 1.0 / self.rps
            next_at = time.monotonic()
            while not self._stop.is_set():
                pod, copy = self._choose(self.table)
                row = next(self.rows)
                body = json.dumps(row if self.path == "/predict" else v2_request(row)).encode()
                for target, mirrored in ((pod, False), (copy, True)):
                    if mirrored and target is None:
                        continue
                    task = asyncio.create_task(self._send(client, target, body, mirrored))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                next_at = max(next_at + period, time.monotonic())
                await asyncio.sleep(next_at - time.monotonic())
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout + 1)

    def _load(self) -> None:
        asyncio.run(self._schedule())


def v2_request(row: Mapping[str, Any]) -> dict[str, Any]:
    """An Open Inference Protocol request of one row: a tensor of shape [1] per feature."""
    tensors = []
    for name, value in row.items():
        datatype = (
            "BOOL" if isinstance(value, bool) else "INT64" if isinstance(value, int)
            else "FP64" if isinstance(value, float) else "BYTES"
        )  # fmt: skip
        tensors.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    return {"inputs": tensors}


def row_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The row a request body asked about (native or V2)."""
    if "inputs" not in body:
        return dict(body)
    return {tensor["name"]: tensor["data"][0] for tensor in body["inputs"]}
