"""What a revision serves — its package digest and training data version — asked of one
of its ready pods (`/evidence`, "model"), for the archive record of a revision that
stops serving (its pods are still up in that pass: the archive is written before the
pass acts). None when no pod answers: the record then says nothing of it."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from pitstop.api.resource import ModelDeployment
from pitstop.k8s.client import KubeClient
from pitstop.metrics import keys, pods

TIMEOUT = 2.0
log = logging.getLogger(__name__)
# One client for every probe: building one per call costs an SSL context (~10 ms of CPU),
# and a rollout at scale ends thousands of revisions.
_HTTP = httpx.Client(timeout=TIMEOUT)


def package(kube: KubeClient, md: ModelDeployment, revision: str) -> dict[str, Any] | None:
    ns, name = md.metadata.namespace, md.metadata.name
    try:
        ready = pods.ready_addresses(kube, ns, name, revision)
        if not ready:
            return None
        headers = keys.headers(kube, md)
        url = sorted(ready.values())[0]
        answer = _HTTP.get(f"{url}/evidence", headers=headers)
        answer.raise_for_status()
        found = answer.json().get("model")
    except (httpx.HTTPError, LookupError, ValueError, AttributeError) as error:
        log.info("%s/%s: what revision %s serves is unknown: %s", ns, name, revision, error)
        return None
    return found if isinstance(found, dict) else None
