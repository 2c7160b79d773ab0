"""Monitoring the stable between rollouts, on the real control plane with the operator
on its chart's ServiceAccount: a metric beyond its limit for `for` recommends
retraining (condition, Event) and starts the retraining Job once per episode.

The stable's pod is a KWOK pod; a real HTTP server on its IP answers /evidence with the
labelled predictions the test sets (as `test_builtin_evidence` does), so the operator's
own code finds the pod through the API and reads it as it reads a model server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from evidence_server import EvidenceServer
from metric_webhook import Webhook
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from test_rollouts_service import World

pytestmark = pytest.mark.integration

PACKAGE = {"name": "fraud", "version": "1", "digest": "sha256:pkg",
           "data": {"uri": "s3://ml/fraud/train.csv", "sha256": "d4t4"}}  # fmt: skip


class Labelled(EvidenceServer):
    """A model server's /evidence whose labelled predictions grow 50 a second, right
    `accuracy` of the time."""

    def __init__(self, ip: str) -> None:
        self.accuracy = 0.95
        self.rows = self.correct = 0.0
        self.last = time.monotonic()
        super().__init__(ip, self.evidence)

    def evidence(self) -> dict[str, Any]:
        now = time.monotonic()
        fresh, self.last = 50 * (now - self.last), now
        self.rows += fresh
        self.correct += fresh * self.accuracy
        return {"version": 1, "instance": "one", "model": PACKAGE,
                "predict": {"requests": int(self.rows), "errors": 0,
                            "latency": {"schema": 5, "counts": {}}},
                "quality": {"rows": int(self.rows), "correct": int(self.correct)}}  # fmt: skip


TRAIN = {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
    {"name": "train", "image": "example.test/train:1",
     "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                         "runAsUser": 1000, "capabilities": {"drop": ["ALL"]},
                         "seccompProfile": {"type": "RuntimeDefault"}}}]}}}}  # fmt: skip
MONITORING = {
    "metrics": [{"name": "accuracy", "builtin": "quality", "max": 0.2}],
    "for": "3s", "interval": "1s", "retrain": {"job": TRAIN},
}  # fmt: skip


@pytest.fixture
def stable(cluster: testing.DevCluster, namespace: str, operator: OperatorProcess,
           webhook: Webhook) -> Iterator[tuple[World, Labelled]]:  # fmt: skip
    world = World(cluster, namespace)
    both = {**MONITORING, "retrain": {"job": TRAIN, "webhook": {"url": webhook.url}}}
    world.apply("1", {"type": "BlueGreen"}, serving={"replicas": 1}, monitoring=both)
    world.healthy("1")

    def ip() -> str | None:
        items = world.get("pods", "-l", "pitstop.dev/model-deployment=fraud")["items"]
        found = [(p.get("status") or {}).get("podIP") for p in items]
        return found[0] if len(found) == 1 and found[0] else None

    server = Labelled(cluster.wait("the stable's pod IP", ip))
    try:
        yield world, server
    finally:
        server.close()


def retrain_jobs(world: World) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = world.get("jobs", "-l", "pitstop.dev/role=retrain")["items"]
    return jobs


def condition(status: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in status.get("conditions", []) if c["type"] == "RetrainingRecommended"]
    return found[0] if found else {}


def test_a_stable_beyond_its_limit_for_long_enough_starts_one_retraining_per_episode(
    stable: tuple[World, Labelled], webhook: Webhook
) -> None:
    world, server = stable
    checked = world.until("monitored", lambda s: (s.get("monitoring") or {}).get("lastCheck"))
    assert not condition(checked)  # within its limit: nothing recommended
    assert retrain_jobs(world) == []

    server.accuracy = 0.6  # 40 % wrong, limit 20 %
    began = world.until("retraining recommended",
                        lambda s: condition(s).get("status") == "True", timeout=90)  # fmt: skip
    assert condition(began)["reason"] == "MetricBeyondLimit"
    assert "accuracy" in condition(began)["message"]
    episode = began["monitoring"]["episode"]
    world.cluster.wait("the retraining Job", lambda: len(retrain_jobs(world)) == 1)
    (job,) = retrain_jobs(world)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["PITSTOP_MODEL"], env["PITSTOP_MODEL_VERSION"]) == ("fraud", "1")
    assert (env["PITSTOP_DATA_URI"], env["PITSTOP_DATA_SHA256"]) == ("s3://ml/fraud/train.csv",
                                                                     "d4t4")  # fmt: skip
    assert "accuracy" in env["PITSTOP_REASON"]
    # The breach goes on through several more checks: still one episode, one Job.
    first = began["monitoring"]["lastCheck"]
    seen: set[str] = set()
    world.until("five more checks", lambda s: seen.add(s["monitoring"]["lastCheck"]) or
                len(seen - {first}) >= 5)  # fmt: skip
    assert world.status()["monitoring"]["episode"] == episode
    assert len(retrain_jobs(world)) == 1
    reasons = [e["reason"] for e in world.get("events", "--field-selector",
                                              "involvedObject.name=fraud")["items"]]  # fmt: skip
    assert reasons.count("RetrainingRecommended") == 1
    # The webhook was told once, with the same parameters as the Job.
    world.cluster.wait("the retraining webhook", lambda: len(webhook.calls) >= 1)
    (told,) = webhook.calls
    assert (told["kind"], told["PITSTOP_DATA_SHA256"]) == ("Retrain", "d4t4")
    assert json.loads(told["PITSTOP_EVIDENCE"])["episode"] == episode

    server.accuracy = 0.97  # retrained elsewhere, or the world changed back
    ended = world.until("no longer recommended",
                        lambda s: condition(s).get("status") == "False", timeout=90)  # fmt: skip
    assert condition(ended)["reason"] == "WithinLimits"
    assert "episode" not in ended["monitoring"]

    server.accuracy = 0.6  # a new episode: a new retraining
    world.until("recommended again", lambda s: condition(s).get("status") == "True", timeout=90)
    world.cluster.wait("a second Job", lambda: len(retrain_jobs(world)) == 2)
    world.cluster.wait("a second webhook call", lambda: len(webhook.calls) == 2)
