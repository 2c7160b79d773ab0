"""The builtin provider reads what each analysed pod served between two looks, and a look
where a pod cannot be read changes nothing (issue 11: a failed scrape used to store an
empty snapshot, so the next one judged each pod's whole lifetime as one interval).

Real parts: pods of the real control plane (KWOK gives them loopback IPs), found by the
operator's own code through the API, and real HTTP servers on those IPs answering
/evidence with counters the test sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from evidence_server import EvidenceServer
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import testing
from pitstop.k8s.client import KubeClient
from pitstop.metrics import collect, lineage
from pitstop.metrics.builtin import Scraper
from pitstop.rendering import labels

pytestmark = pytest.mark.integration


PACKAGE = {"name": "fraud", "version": "1", "digest": "sha256:pkg",
           "data": {"uri": "s3://data/fraud.parquet", "sha256": "abc", "rows": 5000}}  # fmt: skip


class Pod(EvidenceServer):
    """A pod whose /evidence says what the test sets."""

    def __init__(self, ip: str) -> None:
        self.requests = self.errors = 0
        self.broken = False
        super().__init__(ip, self.evidence)

    def evidence(self) -> dict[str, Any] | None:
        if self.broken:
            return None
        return {"version": 1, "instance": "one", "model": PACKAGE, "predict": {
            "requests": self.requests, "errors": self.errors,
            "latency": {"schema": 3, "counts": {"-56": self.requests}}}}  # fmt: skip

    def serve(self, requests: int, errors: int = 0) -> None:
        self.requests += requests
        self.errors += errors


def pod_manifest(name: str, revision: str) -> dict[str, Any]:
    restricted = {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1034,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {labels.DEPLOYMENT: "fraud", labels.REVISION: revision}},
        "spec": {"containers": [{"name": "model", "image": "example.test/model:1",
                                 "securityContext": restricted}]},
    }  # fmt: skip


def fraud(namespace: str) -> ModelDeployment:
    return ModelDeployment.model_validate({
        "metadata": {"name": "fraud", "namespace": namespace, "uid": "u", "generation": 1},
        "spec": {"model": {"name": "fraud", "version": "1"}, "image": "example.test/model:1"},
    })  # fmt: skip


@pytest.fixture
def pods(cluster: testing.DevCluster, namespace: str) -> Iterator[dict[str, Pod]]:
    for name, revision in (("cand-0", "cand"), ("stable-0", "stable"), ("stable-1", "stable")):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod_manifest(name, revision)))  # fmt: skip

    def ips() -> dict[str, str] | None:
        items = (cluster.get("pods", namespace=namespace) or {}).get("items", [])
        found = {p["metadata"]["name"]: (p.get("status") or {}).get("podIP") for p in items}
        return found if len(found) == 3 and all(found.values()) else None  # type: ignore[return-value]

    servers = {name: Pod(ip) for name, ip in cluster.wait("pods with IPs", ips).items()}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.close()


def test_a_look_that_cannot_read_a_pod_changes_nothing(
    cluster: testing.DevCluster, namespace: str, pods: dict[str, Pod]
) -> None:
    md = fraud(namespace)
    with cluster.api_client() as api:
        scraper = Scraper(KubeClient(api))
        for pod in pods.values():
            pod.serve(1000, 50)  # a long life before the analysis started
        first, _ = collect.look(scraper, md, "cand", "stable")
        assert first is None  # every pod's first look is only its baseline

        pods["cand-0"].serve(10, 2)
        pods["stable-0"].serve(20)
        pods["stable-1"].serve(20, 1)
        second, _ = collect.look(scraper, md, "cand", "stable")
        assert second is not None
        assert second.stable is not None
        assert (second.candidate.requests, second.candidate.errors) == (10, 2)
        assert (second.stable.requests, second.stable.errors) == (40, 1)

        pods["cand-0"].broken = True  # its counters go on, but cannot be read
        pods["cand-0"].serve(10, 3)
        pods["stable-0"].serve(20)
        skipped, why = collect.look(scraper, md, "cand", "stable")
        assert skipped is None
        assert why is not None
        assert "look skipped" in why

        pods["cand-0"].broken = False
        pods["cand-0"].serve(5)
        pods["stable-1"].serve(5)
        third, _ = collect.look(scraper, md, "cand", "stable")
        assert third is not None
        assert third.stable is not None
        # Both revisions' intervals span the same two looks — not a pod's lifetime.
        assert (third.candidate.requests, third.candidate.errors) == (15, 3)
        assert (third.stable.requests, third.stable.errors) == (25, 0)


def test_the_archive_takes_an_analysed_revisions_lineage_from_the_looks(
    cluster: testing.DevCluster, namespace: str, pods: dict[str, Pod]
) -> None:
    """A look already read what each revision serves: the record of a revision that ends
    needs no LIST of its pods, and gets its lineage even if they no longer answer."""
    md = fraud(namespace)
    with cluster.api_client() as api:
        scraper = Scraper(KubeClient(api))
        assert scraper.served(namespace, "fraud", "cand") is None
        collect.look(scraper, md, "cand", "stable")
        pods["cand-0"].broken = True
        assert lineage.package(scraper, md, "cand") == PACKAGE
        assert lineage.package(Scraper(KubeClient(api)), md, "cand") is None  # no look: asked
