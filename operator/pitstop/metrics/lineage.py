"""What a revision serves — its package digest and training data version — asked of one
of its ready pods (`/evidence`, "model", read as the builtin metrics read it), for the
archive record of a revision that stops serving (its pods are still up in that pass:
the archive is written before the pass acts) — unless a look of the analysis or the
monitoring already read it, which costs no LIST. None when no pod answers: the record
then says nothing of it."""

from __future__ import annotations

import logging
from typing import Any

from pitstop.api.resource import ModelDeployment
from pitstop.metrics import keys, pods
from pitstop.metrics.builtin import Scraper, Unreadable

log = logging.getLogger(__name__)


def package(scraper: Scraper, md: ModelDeployment, revision: str) -> dict[str, Any] | None:
    ns, name = md.metadata.namespace, md.metadata.name
    known = scraper.served(ns, name, revision)  # an analysed revision's looks saw it
    if known is not None:
        return dict(known)
    try:
        ready = pods.ready_addresses(scraper.kube, ns, name, revision)
        if not ready:
            return None
        found = scraper.read(sorted(ready.values())[0], keys.headers(scraper.kube, md)).package
        return dict(found) if found is not None else None
    except (Unreadable, LookupError) as error:
        log.info("%s/%s: what revision %s serves is unknown: %s", ns, name, revision, error)
        return None
