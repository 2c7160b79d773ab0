"""The builtin provider: scrape each pod of a revision, remember the last scrape.

Interval values are deltas between this scrape and the previous one, so the previous
scrape of every analysed revision is kept in memory. A restarted operator has none:
its first interval is inconclusive, which only delays a verdict by one interval.
"""

from __future__ import annotations

import httpx

from pitstop.analysis import samples, window
from pitstop.analysis.samples import Snapshot
from pitstop.k8s.client import KubeClient
from pitstop.metrics import pods

SCRAPE_TIMEOUT = 2.0


class Scraper:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._last: dict[tuple[str, str, str], Snapshot] = {}
        self._http = httpx.Client(timeout=SCRAPE_TIMEOUT)

    def snapshot(self, namespace: str, deployment: str, revision: str) -> Snapshot:
        found = {}
        for pod, url in pods.ready_addresses(self.kube, namespace, deployment, revision).items():
            try:
                response = self._http.get(f"{url}/metrics")
            except httpx.HTTPError:
                continue  # an unreachable pod counts as no data, not as zero
            if response.status_code == 200:
                found[pod] = samples.parse(response.text)
        return Snapshot(found)

    def window(self, namespace: str, deployment: str, revision: str) -> window.Window | None:
        """The interval since the last call for this revision (None on the first call)."""
        key = (namespace, deployment, revision)
        now = self.snapshot(namespace, deployment, revision)
        before = self._last.get(key)
        self._last[key] = now
        if before is None or not now.pods:
            return None
        return window.between(before, now)

    def forget(self, namespace: str, deployment: str, keep: set[str]) -> None:
        """Drop remembered scrapes of revisions no longer analysed."""
        for key in [k for k in self._last if k[:2] == (namespace, deployment) and k[2] not in keep]:
            del self._last[key]
