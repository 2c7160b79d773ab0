"""Kopf handlers: the thin edge between watch events and `reconcile`.

No handler here keeps state in the object (no finalizers, no progress annotations):
every event only kicks the ModelDeployment's reconcile loop, and all rollout state
lives in its status. Startup wires what `pitstop run` asked for: the API facade (its
timeouts, and the leader election's fence on its writes), the election, and the work
queue that waits on it; cleanup undoes it in the safe order.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from pitstop import reconcile, telemetry
from pitstop.api import resource
from pitstop.archive import store as archive_store
from pitstop.k8s import client, errors, transport
from pitstop.k8s.outbox import Outbox
from pitstop.k8s.seen import Seen
from pitstop.leadership import Elector, LeaseSettings
from pitstop.metrics import loadtest
from pitstop.metrics.builtin import Scraper
from pitstop.metrics.load import LoadGenerator
from pitstop.notify.sender import Notifier, Target
from pitstop.rendering import build_job, labels
from pitstop.workqueue import MAX_CONCURRENT, Standby, WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """How `pitstop run` was asked to run (handed over in Kopf's memo)."""

    max_concurrent: int = MAX_CONCURRENT
    api_timeout: float = transport.TIMEOUT_SECONDS
    identity: str = socket.gethostname()
    lease: LeaseSettings | None = None  # None: no leader election, this replica acts
    metrics: tuple[str, int] | None = None  # (host, port) of /metrics; None: none
    notify: Target | None = None  # the operator's own webhook for every ModelDeployment


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled" state to diff against: Pitstop is level-based and registers no
    change handlers (on.create, on.update, ...), only the event and index handlers
    below, which are given the whole object. Kopf still builds each watch event's
    essence to diff it against that base — a deep copy of the object, twice — and then
    uses neither; on a fleet coming up or rolling out that was a tenth of the operator's
    CPU. Empty essences cost nothing and diff as "no change", which nothing here reads
    (tests/unit/test_handlers.py checks no change handler is ever registered)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def configure(settings: kopf.OperatorSettings, options: Options) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.connect_timeout = options.api_timeout
    settings.persistence.diffbase_storage = NoDiffBase()
    for (group, version, plural), wanted in FILTERED.items():
        settings.watching.label_selectors[group, version, plural] = selector(wanted)


def selector(wanted: Mapping[str, Any]) -> str:
    """A handler's label filter as the API server's label selector."""
    return ",".join(key if value is kopf.PRESENT else f"{key}={value}"
                    for key, value in sorted(wanted.items()))  # fmt: skip


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    options: Options = memo.get("options") or Options()
    configure(settings, options)
    loader = memo["loader"] = LoadGenerator()  # analysis.load's senders
    memo["seen"] = Seen()  # the objects as the watches below show them (see `held`)
    elector = None
    write_timeout = options.api_timeout
    if options.lease is not None:
        # A write that passed the fence must be over before another replica can lead.
        write_timeout = min(write_timeout, options.lease.write_margin)
        lease_client = client.connect(
            timeout=min(options.api_timeout, options.lease.renew_deadline / 2)
        )
        elector = memo["elector"] = Elector(lease_client, options.lease, on_stopped=loader.stop_all)
    outbox = Outbox()  # Events leave the reconcile's path (see `pitstop.k8s.outbox`)
    kube = client.connect(
        timeout=options.api_timeout,
        write_timeout=write_timeout,
        fence=elector.fence if elector is not None else None,
        identity=options.identity,
        seen=memo["seen"],
        outbox=outbox,
        # Every reconcile thread and Event sender may be in a call at once.
        callers=options.max_concurrent + outbox.senders,
    )
    memo["kube"] = kube
    tester = memo["tester"] = loadtest.Runner()
    scraper = Scraper(kube)  # remembers each analysed revision's last counters
    notifications = memo["notifications"] = reconcile.Notifications(
        Notifier(), options.notify
    )  # fmt: skip

    def work(namespace: str, name: str) -> float | None:
        started = time.monotonic()
        result, kind = "success", None
        try:
            done = reconcile.reconcile(kube, namespace, name, scraper=scraper, loader=loader,
                                       notifier=notifications, tester=tester)  # fmt: skip
            result = "conflict" if done.conflict else result
            return done.requeue_after
        except errors.NotLeader as error:
            result = "standby"
            raise Standby(str(error)) from error
        except Exception as error:
            result, kind = "error", errors.kind(error)
            raise
        finally:
            telemetry.reconciled(time.monotonic() - started, result, kind)

    queue = memo["queue"] = WorkQueue(
        work,
        max_concurrent=options.max_concurrent,
        gate=elector.gate if elector is not None else None,
    )
    telemetry.QUEUE_DEPTH.set_function(queue.waiting)
    telemetry.EVENTS_WAITING.set_function(outbox.waiting)
    if options.metrics is not None:
        telemetry.serve(options.metrics[1], options.metrics[0])
    if elector is not None:
        memo["election"] = asyncio.create_task(elector.run(), name="leader election")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop writing first, let running reconciles end, then hand the Lease over."""
    elector: Elector | None = memo.get("elector")
    if elector is not None:
        # Queued Events say what committed passes decided: out before the fence closes.
        await asyncio.to_thread(memo["kube"].outbox.flush, 1.0)
        memo["election"].cancel()
        elector.resign()
    await memo["queue"].stop()
    await asyncio.to_thread(memo["kube"].outbox.stop)  # what the last reconciles said
    memo["loader"].stop_all()
    memo["tester"].stop()
    await asyncio.to_thread(memo["notifications"].sender.stop)
    if elector is not None:
        await elector.release()


_CHILD: Mapping[str, Any] = {labels.MANAGED_BY: "pitstop", labels.DEPLOYMENT: kopf.PRESENT}
_BUILD: Mapping[str, Any] = {labels.MANAGED_BY: "pitstop", labels.ROLE: build_job.ROLE_BUILD}

# Kopf's watch of a kind is one stream for all its handlers, and a handler's `labels`
# only filters what already arrived: without a selector on the stream itself, the
# operator would list and watch every Deployment, Service, ConfigMap and Job it may
# read, every tenant's, and spend a Kopf worker on each. The same filters, given to the
# API server (`configure`), keep those streams to Pitstop's own objects; an object
# whose labels stop matching leaves the stream as deleted, so it is forgotten and its
# owner looks again. ModelDeployments are all Pitstop's: no selector.
FILTERED: Mapping[tuple[str, str, str], Mapping[str, Any]] = {
    ("apps", "v1", "deployments"): _CHILD,
    ("", "v1", "services"): _CHILD,
    ("", "v1", "configmaps"): _CHILD,
    ("batch", "v1", "jobs"): _BUILD,
}


# Kopf runs indexing handlers on every watch event before any other handler, and holds
# every other handler back until the initial lists of all indexed kinds are indexed:
# that is the gate that keeps the reconciles (only ever kicked by the handlers below)
# from reading an empty view. The indices themselves stay empty (None is not indexed);
# `Seen` holds the bodies, thread-safe for the reconcile threads.
@kopf.index(resource.GROUP, resource.VERSION, resource.PLURAL, id="held_model_deployments")
@kopf.index("apps", "v1", "deployments", labels=_CHILD, id="held_deployments")
@kopf.index("", "v1", "services", labels=_CHILD, id="held_services")
@kopf.index("", "v1", "configmaps", labels=_CHILD, id="held_config_maps")
async def held(body: kopf.Body, resource: kopf.Resource, memo: kopf.Memo, **_: Any) -> None:
    version = f"{resource.group}/{resource.version}" if resource.group else resource.version
    memo["seen"].record({"apiVersion": version, "kind": resource.kind, **body})


def _track(memo: kopf.Memo, event: kopf.RawEvent) -> None:
    """An event past Kopf's gate: the view opens for reads (the initial lists are in),
    and a deleted object leaves it."""
    memo["seen"].open()
    if event["type"] == "DELETED":
        memo["seen"].forget(event["object"])


@kopf.on.event(resource.GROUP, resource.VERSION, resource.PLURAL)
async def model_deployment_changed(
    event: kopf.RawEvent, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    assert namespace is not None  # ModelDeployments are namespaced
    _track(memo, event)
    queue: WorkQueue = memo["queue"]
    if event["type"] == "DELETED":
        queue.forget((namespace, name))
        telemetry.FLEET.forget(namespace, name)
        memo["loader"].stop((namespace, name))
        await _archive_deleted(memo, dict(event["object"]))
    else:
        queue.kick((namespace, name))


async def _archive_deleted(memo: kopf.Memo, obj: dict[str, Any]) -> None:
    """Keep what a deleted ModelDeployment still served in its archive (only the leader
    writes: a standby's write is refused with NotLeader)."""
    try:
        await asyncio.to_thread(archive_store.deleted, memo["kube"], obj)
    except errors.NotLeader:
        pass
    except Exception as error:  # an Event has no object left to go on
        log.warning("could not archive deleted %s: %s", obj.get("metadata", {}).get("name"), error)


@kopf.on.event("apps", "v1", "deployments", labels=_CHILD)
async def child_changed(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """A revision's Deployment moved (e.g. became available): look at its owner again."""
    assert namespace is not None
    _track(memo, event)
    memo["queue"].kick((namespace, body.metadata.labels[labels.DEPLOYMENT]))


@kopf.on.event("", "v1", "services", labels=_CHILD)
@kopf.on.event("", "v1", "configmaps", labels=_CHILD)
async def plain_child_changed(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """A Service or the mirror ConfigMap of a ModelDeployment was written or deleted by
    someone else: its owner applies it again. (Pitstop's own writes are only held, by
    `held`: applies that would change nothing are skipped.)"""
    assert namespace is not None
    _track(memo, event)
    if event["type"] == "DELETED" or not _by_pitstop(body):
        memo["queue"].kick((namespace, body.metadata.labels[labels.DEPLOYMENT]))


def _by_pitstop(body: kopf.Body) -> bool:
    """Whether Pitstop's field manager made the object's latest change."""
    fields: list[dict[str, Any]] = list(body.metadata.get("managedFields") or [])
    if not fields:
        return False
    latest = max(fields, key=lambda f: str(f.get("time") or ""))
    return bool(latest.get("manager") == labels.FIELD_MANAGER)


# Build Jobs live in the build namespace and serve every requester of their build key,
# so no ModelDeployment's name is in their labels; only the annotation says who started
# one. That one hears of it at once; others sharing the build (and every requester when
# the build namespace is not watched) look again every PITSTOP_BUILD_POLL_SECONDS.
@kopf.on.event("batch", "v1", "jobs", labels=_BUILD)
async def build_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A build Job moved (succeeded, failed): its requester resolves its image again."""
    requester = body.metadata.annotations.get(build_job.REQUESTED_BY, "")
    requester_ns, requester_name = requester.partition("/")[::2]
    if requester_ns and requester_name:
        memo["queue"].kick((requester_ns, requester_name))
