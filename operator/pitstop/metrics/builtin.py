"""The builtin provider: read each pod's counters and hand the judge what is new.

Each look reads every ready pod of the analysed revisions (`/evidence`, or `/metrics`
on images older than that endpoint) and returns, per revision, what its pods served
since the previous look. The previous counters of each pod are kept in memory. A look
where some pod cannot be read is skipped as a whole and changes nothing, so the next
one covers the same span for every pod of both revisions — never a pod's lifetime,
and never one revision's longer interval against the other's shorter one. A restarted
operator has no memory: its first look only takes baselines.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx

from pitstop.analysis import samples, window
from pitstop.analysis.samples import PodCounters
from pitstop.k8s.client import KubeClient
from pitstop.metrics import answers, pods

SCRAPE_TIMEOUT = 2.0
# Revisions whose package the looks have seen (a revision is one image, so one package
# for good): the archive's lineage of a revision that ends comes from here without a
# LIST of its pods. Bounded; the oldest go first.
SERVED_KEPT = 4096

Counters = dict[str, PodCounters]  # by pod name


class Unreadable(Exception):
    """A pod's counters could not be read; the look is skipped."""


class Scraper:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        # By ModelDeployment, then revision: the last counters read of each pod.
        self._memory: dict[tuple[str, str], dict[str, Counters]] = {}
        self._when: dict[tuple[str, str], float] = {}  # monotonic time of the last look
        self._rates: dict[tuple[str, str], dict[str, float]] = {}  # requests/s, last window
        self._served: OrderedDict[tuple[str, str, str], Mapping[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # reconciles of different objects run in threads
        self._http = httpx.Client(timeout=SCRAPE_TIMEOUT)

    def read(self, url: str, headers: Mapping[str, str] | None = None) -> PodCounters:
        try:
            answer = self._http.get(f"{url}/evidence", headers=headers)
            if answer.status_code == 404:  # an image older than /evidence
                answer = self._http.get(f"{url}/metrics", headers=headers)
                answer.raise_for_status()
                return samples.parse_metrics(answer.text)
            answer.raise_for_status()
            return samples.parse_evidence(answer.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            raise Unreadable(answers.describe(error, url)) from error

    def look(
        self,
        namespace: str,
        name: str,
        revisions: tuple[str, ...],
        headers: Mapping[str, str] | None = None,
        purpose: str = "",
    ) -> Mapping[str, window.Window]:
        """What each revision served since the last look (raises Unreadable); `headers`
        carry the model's API key when it asks for auth. Looks for another `purpose`
        (monitoring, beside analysis) keep their own memory."""
        now: dict[str, Counters] = {}
        for revision in revisions:
            ready = pods.ready_addresses(self.kube, namespace, name, revision)
            now[revision] = {pod: self.read(url, headers) for pod, url in ready.items()}
        key = (namespace, name + (f"/{purpose}" if purpose else ""))
        moment = time.monotonic()
        with self._lock:
            for revision, counters in now.items():
                package = next((c.package for c in counters.values() if c.package), None)
                if package is not None:
                    self._served[(namespace, name, revision)] = package
                    self._served.move_to_end((namespace, name, revision))
            while len(self._served) > SERVED_KEPT:
                self._served.popitem(last=False)
            before = self._memory.get(key, {})
            since = self._when.get(key)
            self._memory[key], self._when[key] = now, moment
        windows = {r: window.between(before.get(r, {}), counters) for r, counters in now.items()}
        if since is not None and moment > since:
            with self._lock:
                self._rates[key] = {r: w.requests / (moment - since) for r, w in windows.items()}
        return windows

    def served(self, namespace: str, name: str, revision: str) -> Mapping[str, Any] | None:
        """The package `revision` serves, as a look read it from its pods (None: no
        look has)."""
        with self._lock:
            return self._served.get((namespace, name, revision))

    def rate(self, namespace: str, name: str, revision: str) -> float | None:
        """Requests per second `revision` answered between the last two looks."""
        with self._lock:
            return self._rates.get((namespace, name), {}).get(revision)

    def forget(self, namespace: str, name: str, purpose: str = "") -> None:
        """Drop the memory of a ModelDeployment no longer analysed (or monitored)."""
        name += f"/{purpose}" if purpose else ""
        with self._lock:
            self._memory.pop((namespace, name), None)
            self._when.pop((namespace, name), None)
            self._rates.pop((namespace, name), None)
