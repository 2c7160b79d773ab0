"""The model-quality loop end to end (issue 15): real model servers for every pod, user
traffic through the gateway, and a client that sends each answer's true outcome back
(`POST /feedback`) through the entry — landing on any pod, of any revision, as a real
client's feedback would. The operator judges `quality` on what comes back, watches the
stable between rollouts and starts retraining."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import deployment, gateway, models
from pitstop.devcluster import testing

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
ERRORS = {"name": "error-rate", "builtin": "errorRate", "max": 0.05}


class Feedback:
    """Sends the truth of every answered request, a moment later, through the entry."""

    def __init__(self, load: gateway.Gateway, delay: float = 0.5) -> None:
        self.load, self.delay = load, delay
        self.sent = self.counted = 0
        self.statuses: list[int] = []
        self._done: set[str] = set()
        self._rng = random.Random(7)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feedback", daemon=True)

    def __enter__(self) -> Feedback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.delay):
            fresh = [r for r in list(self.load.records) if r.request_id and r.row
                     and r.request_id not in self._done]  # fmt: skip
            if not fresh:
                continue
            items = [{"request_id": r.request_id, "outcomes": [models.truth(r.row, self._rng)]}
                     for r in fresh if r.row is not None]  # fmt: skip
            try:
                answer = self.load.post("/feedback", {"feedback": items})
            except (httpx.HTTPError, RuntimeError):
                continue
            self.statuses.append(answer.status_code)
            self._done.update(r.request_id for r in fresh if r.request_id)
            self.sent += len(items)
            if answer.status_code == 200:
                self.counted += int(answer.json().get("counted", 0))


@pytest.fixture
def feedback_for() -> Iterator[Callable[[gateway.Gateway], Feedback]]:
    started: list[Feedback] = []

    def start(load: gateway.Gateway) -> Feedback:
        sender = Feedback(load).__enter__()
        started.append(sender)
        return sender

    yield start
    for sender in started:
        sender.__exit__()


def degraded(status: dict[str, Any]) -> str:
    found = [c for c in status.get("conditions", []) if c["type"] == "Degraded"]
    assert found, status.get("conditions")
    return str(found[0]["message"])


def test_an_as_fast_but_less_accurate_candidate_is_rolled_back_by_quality(
    md: deployment.Deployment, gateway_for: Start, feedback_for: Callable[..., Feedback]
) -> None:
    checks = {"minRequests": 20, "metrics": [
        ERRORS, {"name": "accuracy", "builtin": "quality", "maxAboveStable": 0.05}]}  # fmt: skip
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "120s"}]}}
    md.apply(models.GOOD, canary, analysis=checks, revisionHistoryLimit=0)
    load = gateway_for()
    md.healthy(models.GOOD)
    feedback = feedback_for(load)
    md.apply(models.SHUFFLED, canary, analysis=checks, revisionHistoryLimit=0)
    status = md.until("rolled back", lambda s: s.get("phase") == "RolledBack", timeout=180)

    assert "accuracy" in degraded(status)
    assert status["stable"]["version"] == models.GOOD
    judged = {m["name"]: m for m in status["analysis"]["metrics"]}
    # As fast and as error-free: only its answers' truth gave it away.
    assert judged["error-rate"]["verdict"] != "Fail"
    assert judged["accuracy"]["verdict"] == "Fail"
    assert judged["accuracy"]["value"] > judged["accuracy"]["stableValue"] + 0.05
    assert all(r.status == 200 for r in load.answered(version=models.SHUFFLED))
    # Feedback landed on either revision's pod and was counted by the one that predicted.
    assert feedback.counted > 0
    assert 404 not in feedback.statuses

    # Its Deployment goes (revisionHistoryLimit 0); its archive record stays, with what
    # it served (from its model server) and why it ended.
    bad = status["rejectedRevision"]
    md.cluster.wait("the rejected revision's Deployment deleted",
                    lambda: models.SHUFFLED not in {
                        d["metadata"]["labels"]["pitstop.dev/model-version"]
                        for d in md.get("deployments", "-l", "pitstop.dev/model-deployment=fraud")["items"]})  # fmt: skip
    records = json.loads(md.get("configmap", "fraud-archive")["data"]["records.json"])
    (record,) = [r for r in records if r["revision"] == bad]
    assert (record["version"], record["outcome"]) == (models.SHUFFLED, "RolledBack")
    assert "accuracy" in record["reason"]
    assert {f["name"]: f["verdict"] for f in record["analysis"]}["accuracy"] == "Fail"
    assert record["package"]["digest"].startswith("sha256:")
    assert record["package"]["data"]["sha256"]


def test_a_model_whose_quality_decays_after_promotion_is_rolled_back_in_the_window(
    md: deployment.Deployment, gateway_for: Start, feedback_for: Callable[..., Feedback]
) -> None:
    blue_green = {"type": "BlueGreen", "blueGreen": {"autoPromote": True, "scaleDownDelay": "0s"}}
    checks = {"minRequests": 20, "postPromotionWindow": "180s", "metrics": [
        ERRORS, {"name": "accuracy", "builtin": "quality", "max": 0.35}]}  # fmt: skip
    md.apply(models.GOOD, blue_green, analysis=checks)
    load = gateway_for()
    v1 = md.healthy(models.GOOD)["stable"]["revision"]
    feedback_for(load)
    md.apply(models.DECAYING, blue_green, analysis=checks)
    md.healthy(models.DECAYING)  # promoted: right for its first 100 answers
    status = md.until("rolled back to v1", lambda s: s.get("phase") == "RolledBack"
                      and s["stable"]["revision"] == v1, timeout=180)  # fmt: skip

    assert "accuracy" in degraded(status)
    outcomes = [(h["version"], h["outcome"]) for h in status["history"]]
    assert (models.DECAYING, "RolledBack") in outcomes
    md.cluster.wait("back on v1", lambda: load.share_now(models.GOOD) == 100)


TRAIN = {"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
    "containers": [{"name": "train", "image": "e2e.pitstop.test/train:1",
                    "securityContext": {"allowPrivilegeEscalation": False,
                                        "runAsNonRoot": True, "runAsUser": 1000,
                                        "capabilities": {"drop": ["ALL"]},
                                        "seccompProfile": {"type": "RuntimeDefault"}}}]}}}}  # fmt: skip


def test_a_stable_whose_inputs_drift_starts_exactly_one_retraining(
    md: deployment.Deployment, cluster: testing.DevCluster, gateway_for: Start
) -> None:
    monitoring = {"metrics": [{"name": "drift", "builtin": "drift", "max": 0.2}],
                  "for": "5s", "interval": "1s", "retrain": {"job": TRAIN}}  # fmt: skip
    md.apply(models.GOOD, {"type": "BlueGreen"}, monitoring=monitoring)
    md.healthy(models.GOOD)
    gateway_for(rows=models.rows(seed=3, shift=3.0))  # live amounts 3 sd above training

    def recommended(status: dict[str, Any]) -> bool:
        return any(c["type"] == "RetrainingRecommended" and c["status"] == "True"
                   for c in status.get("conditions", []))  # fmt: skip

    status = md.until("retraining recommended", recommended, timeout=120)
    episode = status["monitoring"]["episode"]
    assert episode.startswith("drift@")

    def jobs() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = md.get("jobs", "-l", "pitstop.dev/role=retrain")["items"]
        return found

    cluster.wait("the retraining Job", lambda: len(jobs()) == 1)
    env = {
        e["name"]: e["value"] for e in jobs()[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PITSTOP_MODEL_VERSION"] == models.GOOD
    assert env["PITSTOP_DATA_SHA256"]  # the training data's hash, from the model server
    assert "drift" in env["PITSTOP_REASON"]
    # The drift goes on: more checks, the same episode, still exactly one Job.
    first = status["monitoring"]["lastCheck"]
    seen: set[str] = set()
    md.until("ten more checks", lambda s: seen.add(s["monitoring"]["lastCheck"]) or
             len(seen - {first}) >= 10)  # fmt: skip
    assert md.status()["monitoring"]["episode"] == episode
    assert len(jobs()) == 1


_governance = testing.conftest_module(
    Path(__file__).parent.parent / "integration" / "test_governance.py", "governance_helpers"
)


def test_approval_holds_a_passing_candidate_and_the_history_names_who_promoted(
    md: deployment.Deployment, gateway_for: Start, feedback_for: Callable[..., Feedback],
    tmp_path: Path,
) -> None:  # fmt: skip
    _governance.grant_alice(md.cluster, md.namespace)
    alice = _governance.alice_kubeconfig(md.cluster, tmp_path / "alice.kubeconfig")
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "120s"}]}}
    checks = {"minRequests": 20, "metrics": [
        ERRORS, {"name": "accuracy", "builtin": "quality", "maxAboveStable": 0.1}]}  # fmt: skip
    md.apply(models.GOOD, canary, analysis=checks, approval="Required")
    load = gateway_for()
    md.healthy(models.GOOD)
    feedback_for(load)
    md.apply(models.BETTER, canary, analysis=checks, approval="Required")
    waiting = md.until("awaiting approval", lambda s: any(
        c["type"] == "Paused" and c.get("reason") == "AwaitingApproval"
        for c in s.get("conditions", [])), timeout=180)  # fmt: skip
    assert {m["name"]: m["verdict"] for m in waiting["analysis"]["metrics"]} == {
        "error-rate": "Pass", "accuracy": "Pass"}  # fmt: skip

    reason = "accuracy on par, reviewed"
    out = _governance.pitstop(alice, "promote", "fraud", "-n", md.namespace, "--reason", reason)
    assert out.returncode == 0, out.stderr
    md.healthy(models.BETTER)
    # alice may read ModelDeployments, not ConfigMaps: her history is the status'...
    mine = _governance.pitstop(alice, "history", "fraud", "-n", md.namespace, "--json")
    assert mine.returncode == 0, mine.stderr
    assert "the archive is not shown" in mine.stderr
    promoted = next(r for r in json.loads(mine.stdout) if r["version"] == models.BETTER)
    assert [(q["action"], q["by"], q["reason"]) for q in promoted["requests"]] == [
        ("promote", "alice", reason)]  # fmt: skip
    # ...the platform team's includes the archive: the stable she replaced, retired.
    full = _governance.pitstop(md.cluster.kubeconfig, "history", "fraud", "-n", md.namespace,
                               "--json")  # fmt: skip
    assert full.returncode == 0, full.stderr
    records = json.loads(full.stdout)
    assert next(r for r in records if r["version"] == models.GOOD)["outcome"] == "Retired"
    assert next(r for r in records if r["version"] == models.BETTER)["requests"][0]["by"] == "alice"
