"""Kopf handlers: the thin edge between watch events and `reconcile`.

No handler here keeps state in the object (no finalizers, no progress annotations):
every event only kicks the ModelDeployment's reconcile loop, and all rollout state
lives in its status.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from pitstop import reconcile
from pitstop.api import resource
from pitstop.k8s import client
from pitstop.metrics.builtin import Scraper
from pitstop.metrics.load import LoadGenerator
from pitstop.rendering import labels
from pitstop.workqueue import WorkQueue


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    kube = client.connect()
    scraper = Scraper(kube)  # remembers each analysed revision's last counters
    loader = memo["loader"] = LoadGenerator()  # analysis.load's senders

    def work(namespace: str, name: str) -> float | None:
        return reconcile.reconcile(
            kube, namespace, name, scraper=scraper, loader=loader
        ).requeue_after

    memo["queue"] = WorkQueue(work)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo["queue"].stop()
    memo["loader"].stop_all()


@kopf.on.event(resource.GROUP, resource.VERSION, resource.PLURAL)
async def model_deployment_changed(
    event: kopf.RawEvent, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    assert namespace is not None  # ModelDeployments are namespaced
    queue: WorkQueue = memo["queue"]
    if event["type"] == "DELETED":
        queue.forget((namespace, name))
        memo["loader"].stop((namespace, name))
    else:
        queue.kick((namespace, name))


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    labels={labels.MANAGED_BY: "pitstop", labels.DEPLOYMENT: kopf.PRESENT},
)
async def child_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A revision's Deployment moved (e.g. became available): look at its owner again."""
    assert namespace is not None
    memo["queue"].kick((namespace, body.metadata.labels[labels.DEPLOYMENT]))


@kopf.on.event(
    "batch", "v1", "jobs", labels={labels.MANAGED_BY: "pitstop", labels.DEPLOYMENT: kopf.PRESENT}
)
async def build_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A build Job moved (succeeded, failed): its requester resolves its image again."""
    assert namespace is not None
    memo["queue"].kick((namespace, body.metadata.labels[labels.DEPLOYMENT]))
