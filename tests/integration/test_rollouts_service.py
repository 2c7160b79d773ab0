"""Rollouts with the default `service` traffic provider, on the real control plane.

Each test drives the real operator process through a strategy and checks at every step
what the API holds: Deployments and their replicas, the entry Service's selector, the
mirror ConfigMap and the status. Manual gates go through the real `pitstop` CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import operator_metrics
import pytest
import yaml
from pitstop.devcluster import binaries, chaos, testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

OWNED = "pitstop.dev/model-deployment=fraud"


class World:
    """What the API holds for the ModelDeployment `fraud` in one namespace."""

    def __init__(self, cluster: testing.DevCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace

    def apply(self, version: str, strategy: dict[str, Any], image: str = "", **spec: Any) -> None:
        body = {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud"},
            "spec": {
                "model": {"name": "fraud", "version": version},
                "image": image or f"registry.example.com/ml/fraud:{version}",
                "serving": {"replicas": 2},
                "strategy": strategy,
                **spec,
            },
        }
        self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump(body))

    def get(self, *what: str) -> Any:
        """`kubectl get`'s answer; LookupError where the object is not there."""
        return self.cluster.require(*what, namespace=self.namespace)

    def md(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.get("md", "fraud")
        return obj

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.md().get("status", {})
        return status

    def replicas(self) -> dict[str, int]:
        """Spec replicas of each revision's Deployment, by version."""
        items = self.get("deployments", "-l", OWNED)["items"]
        return {d["metadata"]["labels"]["pitstop.dev/model-version"]: d["spec"]["replicas"]
                for d in items}  # fmt: skip

    def entry_selects(self) -> str:
        """Which version(s) the entry Service selects: a version, or 'all'."""
        selector = self.get("service", "fraud")["spec"]["selector"]
        revision = selector.get("pitstop.dev/revision")
        if revision is None:
            return "all"
        for d in self.get("deployments", "-l", OWNED)["items"]:
            if d["metadata"]["labels"]["pitstop.dev/revision"] == revision:
                return str(d["metadata"]["labels"]["pitstop.dev/model-version"])
        return revision

    def serving(self) -> dict[str, int]:
        """Pods users reach through the entry Service, by version: those its selector
        matches that are Ready and not terminating — the EndpointSlice controller's rule.
        (It cannot list them itself here: EndpointSlices refuse the loopback pod IPs.)"""
        selector = self.get("service", "fraud")["spec"]["selector"]
        labels = ",".join(f"{key}={value}" for key, value in selector.items())
        found: dict[str, int] = {}
        for pod in self.get("pods", "-l", labels)["items"]:
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in pod.get("status", {}).get("conditions", []))  # fmt: skip
            if ready and not pod["metadata"].get("deletionTimestamp"):
                version = pod["metadata"]["labels"]["pitstop.dev/model-version"]
                found[version] = found.get(version, 0) + 1
        return found

    def mirror(self) -> dict[str, Any]:
        data = self.get("configmap", "fraud-mirror")["data"]["mirror.json"]
        body: dict[str, Any] = json.loads(data)
        return body

    def until(self, what: str, check: Any, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status()
            return status if check(status) else None

        return self.cluster.wait(what, probe, timeout=timeout)

    def settles(self, what: str, probe: Any, wanted: Any) -> None:
        """The children follow a status a moment after it is written (a pass commits its
        status, then acts): wait for them rather than read them once."""

        def settled() -> bool:
            try:
                return bool(probe() == wanted)
            except LookupError:  # not there yet (the object, or a key of it)
                return False

        self.cluster.wait(what, settled)

    def healthy(self, version: str) -> dict[str, Any]:
        return self.until(f"v{version} Healthy", lambda s: s.get("phase") == "Healthy"
                          and (s.get("stable") or {}).get("version") == version)  # fmt: skip

    def pitstop(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`kubectl pitstop ARGS fraud -n NS`: the real kubectl running the plugin that
        pip installed beside this interpreter, as a user's shell finds them."""
        path = os.pathsep.join([str(Path(sys.executable).parent), str(binaries.bin_dir()),
                                os.environ.get("PATH", "")])  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "PATH": path}
        return subprocess.run(
            ["kubectl", "pitstop", *args, "fraud", "-n", self.namespace],
            env=env, capture_output=True, text=True, check=True, timeout=90,
        )  # fmt: skip


@pytest.fixture
def world(cluster: testing.DevCluster, namespace: str, operator: OperatorProcess) -> World:
    return World(cluster, namespace)


CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "2s"}, {"weight": 50}]}}
INSTANT = {"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "0s"}}


def test_canary_by_replica_ratio_then_manual_promote(world: World) -> None:
    world.apply("1", CANARY)
    world.healthy("1")
    world.apply("2", CANARY)
    # Step 1: 10% asked; with 2 stable pods that is 1 candidate pod, i.e. 33% of pods.
    step1 = world.until("step 1", lambda s: (s.get("candidate") or {}).get("state") == "Canary"
                        and s["traffic"]["candidate"] == 33)  # fmt: skip
    assert step1["candidate"]["step"] == 0
    world.settles("entry selects all", world.entry_selects, "all")
    # Step 2 has no pause: it waits for a promote with 2 + 2 pods (50%).
    paused = world.until("paused at step 2", lambda s: s.get("phase") == "Paused")
    assert paused["traffic"]["candidate"] == 50
    world.settles("2 + 2 pods", world.replicas, {"1": 2, "2": 2})
    assert "pitstop promote fraud" in paused["message"]

    out = world.pitstop("promote")
    assert "promote requested" in out.stdout
    done = world.healthy("2")
    world.settles("entry selects v2", world.entry_selects, "2")
    assert [(h["version"], h["outcome"]) for h in done["history"]] == [
        ("1", "Retired"),
        ("2", "Promoted"),
    ]
    world.cluster.wait("v1 retired to zero", lambda: world.replicas() == {"1": 0, "2": 2})
    reasons = {
        e["reason"]
        for e in world.get("events", "--field-selector", "involvedObject.name=fraud")["items"]
    }
    assert {"RolloutStarted", "StepAdvanced", "Paused", "PromoteRequested", "Promoted"} <= reasons


def test_blue_green_preview_manual_switch_and_scale_down_delay(world: World) -> None:
    strategy = {"type": "BlueGreen", "blueGreen": {"autoPromote": False, "scaleDownDelay": "3s"}}
    world.apply("1", strategy)
    world.healthy("1")
    world.apply("2", strategy)
    paused = world.until("preview", lambda s: s.get("phase") == "Paused")
    revision = paused["candidate"]["revision"]
    world.settles("entry selects v1", world.entry_selects, "1")
    preview = world.get("service", f"fraud-{revision}")["spec"]["selector"]
    assert preview["pitstop.dev/revision"] == revision
    world.settles("2 + 2 pods", world.replicas, {"1": 2, "2": 2})

    world.pitstop("promote")
    switched = world.healthy("2")
    world.settles("entry selects v2", world.entry_selects, "2")
    assert switched["previous"]["version"] == "1"  # kept up for an instant rollback
    world.cluster.wait(
        "old stable scaled down after the delay", lambda: world.replicas() == {"1": 0, "2": 2}
    )
    assert "previous" not in world.status()


def test_shadow_mirrors_then_abort_and_retry(world: World) -> None:
    strategy = {"type": "Shadow", "shadow": {"percent": 50, "duration": "2s", "promote": "Manual"}}
    world.apply("1", strategy)
    world.healthy("1")
    world.apply("2", strategy)
    shadowing = world.until(
        "mirroring", lambda s: (s.get("candidate") or {}).get("state") == "Shadow"
    )
    revision = shadowing["candidate"]["revision"]
    world.settles("mirroring 50%", world.mirror, {
        "percent": 50,
        "url": f"http://fraud-{revision}.{world.namespace}.svc:80/predict",
    })  # fmt: skip
    assert world.entry_selects() == "1"  # the shadow never answers users
    assert shadowing["traffic"]["mirrored"] == 50
    world.until("shadow complete, awaiting promote", lambda s: s.get("phase") == "Paused")

    world.pitstop("abort")
    rolled = world.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    assert rolled["rejectedRevision"] == revision
    world.settles("mirror off", world.mirror, {"percent": 0})
    assert rolled["history"][-1]["outcome"] == "Aborted"
    world.cluster.wait("candidate scaled to zero", lambda: world.replicas() == {"1": 2, "2": 0})

    world.pitstop("retry")
    again = world.until(
        "shadowing again", lambda s: (s.get("candidate") or {}).get("state") == "Shadow"
    )
    assert again["candidate"]["revision"] == revision
    assert "rejectedRevision" not in again


def test_undo_goes_back_to_a_retained_revision(world: World) -> None:
    world.apply("1", INSTANT)
    v1 = world.healthy("1")["stable"]["revision"]
    world.apply("2", INSTANT)
    world.healthy("2")
    world.cluster.wait("v1 retired", lambda: world.replicas() == {"1": 0, "2": 2})

    world.pitstop("undo", "--to-revision", v1)
    back = world.until("v1 serves again", lambda s: (s.get("stable") or {}).get("revision") == v1)
    assert back["phase"] == "RolledBack"  # the spec's v2 is held until the spec changes
    world.settles("entry selects v1", world.entry_selects, "1")
    world.cluster.wait("v2 retired", lambda: world.replicas() == {"1": 2, "2": 0})


def test_spec_reverted_mid_rollout_cancels_it(world: World) -> None:
    world.apply("1", CANARY)
    world.healthy("1")
    world.apply("2", CANARY)
    world.until("paused at step 2", lambda s: s.get("phase") == "Paused")
    world.apply("1", CANARY)
    done = world.healthy("1")
    assert "candidate" not in done
    world.settles("entry selects v1", world.entry_selects, "1")
    assert done["history"][-1]["outcome"] == "Superseded"
    world.cluster.wait("candidate scaled to zero", lambda: world.replicas() == {"1": 2, "2": 0})


def test_operator_killed_at_each_canary_step_resumes_without_flip_flop(
    world: World, operator: OperatorProcess
) -> None:
    world.apply("1", CANARY)
    world.healthy("1")
    world.apply("2", CANARY)
    seen_steps: list[int] = []
    # Killed as soon as the rollout has begun, then again once step 1's weight is set.
    for what, moment in (
        ("a candidate", lambda s: "candidate" in s),
        ("step 1", lambda s: (s.get("candidate") or {}).get("state") == "Canary"),
    ):
        world.until(what, moment)
        operator.kill()
        seen_steps.append((world.status().get("candidate") or {}).get("step") or 0)
        operator.start()
    paused = world.until("paused at step 2", lambda s: s.get("phase") == "Paused")
    operator.kill()
    operator.start()
    # Still paused at step 2 after the restart: nothing went back to step 1.
    again = world.until(
        "resumed paused",
        lambda s: s.get("observedGeneration") == world.md()["metadata"]["generation"],
    )
    assert again["candidate"]["step"] == paused["candidate"]["step"] == 1
    assert seen_steps == sorted(seen_steps)
    world.settles("2 + 2 pods", world.replicas, {"1": 2, "2": 2})
    world.pitstop("promote")
    world.healthy("2")
    assert len(world.get("services", "-l", OWNED)["items"]) == 3  # entry + 2 revisions


def test_operator_killed_during_blue_green_and_shadow_resumes_where_it_stopped(
    world: World, operator: OperatorProcess
) -> None:
    blue_green = {"type": "BlueGreen", "blueGreen": {"autoPromote": False, "scaleDownDelay": "0s"}}
    world.apply("1", blue_green)
    world.healthy("1")
    world.apply("2", blue_green)
    world.until("preview", lambda s: s.get("phase") == "Paused")
    operator.kill()
    operator.start()
    world.until("still in preview", lambda s: s.get("phase") == "Paused"
                and s.get("observedGeneration") == world.md()["metadata"]["generation"])  # fmt: skip
    assert world.entry_selects() == "1"  # no switch happened by itself
    world.pitstop("promote")
    world.healthy("2")

    shadow = {"type": "Shadow", "shadow": {"percent": 30, "duration": "1h"}}
    world.apply("3", shadow)
    shadowing = world.until(
        "mirroring", lambda s: (s.get("candidate") or {}).get("state") == "Shadow"
    )
    operator.kill()
    # Gone while no operator runs (or never applied: the operator may have been killed
    # between its status write and that apply): the restarted one applies what the
    # status says.
    world.cluster.kubectl("delete", "configmap", "fraud-mirror", "-n", world.namespace,
                          "--ignore-not-found")  # fmt: skip
    operator.start()
    again = world.until("mirroring after the restart", lambda s: (s.get("candidate") or {}).get("state") == "Shadow"
                        and s["traffic"]["mirrored"] == 30)  # fmt: skip
    assert (
        again["candidate"]["stepStartedAt"] == shadowing["candidate"]["stepStartedAt"]
    )  # clock kept
    world.settles("mirroring 30 % after the restart", lambda: world.mirror()["percent"], 30)
    world.settles("entry selects v2", world.entry_selects, "2")


def test_a_canary_right_after_a_switch_never_sends_users_to_the_previous_stable(
    world: World,
) -> None:
    """The canary's entry Service selects every pod of the ModelDeployment: a previous
    stable still up for its scaleDownDelay would answer users beside the canary."""
    keep = {"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "10m"}}
    world.apply("1", keep)
    world.healthy("1")
    world.apply("2", keep)
    switched = world.healthy("2")
    assert switched["previous"]["version"] == "1"  # up for its scaleDownDelay
    world.cluster.wait("users on v2 only", lambda: world.serving() == {"2": 2})

    world.apply("3", CANARY)
    step1 = world.until("step 1", lambda s: (s.get("candidate") or {}).get("state") == "Canary"
                        and s["traffic"]["candidate"] == 33)  # fmt: skip
    # The status is written before the actions it decides: the Service follows it.
    world.cluster.wait(
        "the entry Service opens to every pod", lambda: world.entry_selects() == "all"
    )
    serving = world.cluster.wait("the canary among the endpoints",
                                 lambda: (found := world.serving()).get("3") and found)  # fmt: skip
    # Stable and canary pods only: nothing of v1 among the endpoints users reach.
    assert serving == {"2": 2, "3": 1}
    assert "previous" not in step1  # a new rollout ended the previous stable's window
    world.settles("v1 scaled to 0", lambda: world.replicas()["1"], 0)


def condition(status: dict[str, Any], type_: str) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == type_)
    return found["status"], found["reason"], found.get("message", "")


# A candidate whose pods never become ready, and how: KWOK plays a failing kubelet for
# images so marked (see devcluster.chaos); the real scheduler finds no node for 100 CPUs.
NEVER_READY = [
    pytest.param({"image": "registry.example.com/ml/fraud:2" + chaos.CRASH_LOOP_TAG_SUFFIX},
                 "PodsCrashLooping", "CrashLoopBackOff", id="crash loop"),
    pytest.param({"image": f"{chaos.UNPULLABLE_REGISTRY}/ml/fraud:2"},
                 "ImagePullFailed", "ImagePullBackOff", id="unpullable image"),
    pytest.param({"serving": {"replicas": 2, "resources": {"requests": {"cpu": "100"}}}},
                 "PodsUnschedulable", "Insufficient cpu", id="unschedulable"),
]  # fmt: skip


@pytest.mark.parametrize(("broken", "reason", "words"), NEVER_READY)
def test_a_candidate_never_ready_is_rolled_back_at_its_progress_deadline(
    world: World, broken: dict[str, Any], reason: str, words: str
) -> None:
    world.apply("1", CANARY, progressDeadline="4s")
    v1 = world.healthy("1")["stable"]["revision"]
    world.apply("2", CANARY, progressDeadline="4s", **broken)

    waiting = world.until("waiting, saying why", lambda s: "candidate" in s
                          and words in condition(s, "Progressing")[2])  # fmt: skip
    assert condition(waiting, "Progressing")[:2] == ("True", "WaitingForCandidatePods")
    v2 = waiting["candidate"]["revision"]
    assert world.entry_selects() == "1"

    rolled = world.until("rolled back", lambda s: s.get("phase") == "RolledBack")
    degraded = condition(rolled, "Degraded")
    assert degraded[:2] == ("True", reason)
    assert words in degraded[2]
    assert "after progressDeadline 4s" in degraded[2]
    assert (rolled["stable"]["revision"], rolled["rejectedRevision"]) == (v1, v2)
    entry = rolled["history"][-1]
    assert (entry["revision"], entry["outcome"]) == (v2, "RolledBack")
    assert words in entry["reason"]
    assert world.entry_selects() == "1"
    world.cluster.wait("candidate scaled to zero", lambda: world.replicas() == {"1": 2, "2": 0})
    warnings = {
        e["reason"]
        for e in world.get("events", "--field-selector", "involvedObject.name=fraud")["items"]
        if e["type"] == "Warning"
    }
    assert "RolledBack" in warnings


def test_a_first_revision_never_ready_fails_and_recovers_when_the_spec_is_fixed(
    world: World,
) -> None:
    crashing = "registry.example.com/ml/fraud:1" + chaos.CRASH_LOOP_TAG_SUFFIX
    world.apply("1", CANARY, image=crashing, progressDeadline="3s")
    failed = world.until("Failed", lambda s: s.get("phase") == "Failed")
    progressing = condition(failed, "Progressing")
    assert progressing[:2] == ("False", "PodsCrashLooping")
    assert "CrashLoopBackOff" in progressing[2]
    assert "nothing to fall back to" in progressing[2]
    assert failed["message"] == progressing[2]
    assert world.replicas() == {"1": 2}  # kept: its pods go on being retried

    world.apply("1", CANARY, progressDeadline="3s")  # a commit with an image that runs
    done = world.healthy("1")
    assert done["history"][-1]["outcome"] == "Promoted"


def test_service_provider_a_canary_pod_that_crashes_takes_no_traffic(world: World) -> None:
    slow = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "1h"}]}}
    world.apply("1", slow)
    world.healthy("1")
    world.apply("2", slow)
    world.until("step 1", lambda s: (s.get("candidate") or {}).get("state") == "Canary"
                and s["traffic"]["candidate"] == 33)  # fmt: skip
    assert world.cluster.wait("v2 serving", lambda: world.serving().get("2")) == 1
    pod = world.get("pods", "-l", f"{OWNED},pitstop.dev/model-version=2")["items"][0]
    world.cluster.kubectl("annotate", "pod", pod["metadata"]["name"], "-n", world.namespace,
                          f"{chaos.FATE_ANNOTATION}={chaos.CRASH_LOOP}")  # fmt: skip

    down = world.until("no traffic on v2", lambda s: s["traffic"]["candidate"] == 0)
    assert down["candidate"]["state"] == "Canary"  # within its deadline: it waits
    assert "CrashLoopBackOff" in condition(down, "Progressing")[2]
    world.settles("users on v1 only", world.serving, {"1": 2})  # the Service follows

    world.cluster.kubectl("delete", "pod", pod["metadata"]["name"], "-n", world.namespace)
    back = world.until("v2 back", lambda s: s["traffic"]["candidate"] == 33)
    assert "waitingSince" not in back["candidate"]
    assert back["candidate"]["stepStartedAt"] == down["candidate"]["stepStartedAt"]
    world.cluster.wait("v2 serving again", lambda: world.serving() == {"1": 2, "2": 1})


def _writes(operator: OperatorProcess) -> dict[str, float]:
    """The operator's API writes so far, by verb and resource (from its /metrics), but for
    the leader election's Lease renewals, which go on whatever the reconciles do."""
    found = operator_metrics.samples(operator.metrics_url)
    return operator_metrics.requests(found, verbs=operator_metrics.WRITES, skip=("leases",))


# What every reconcile used to ask the API server for; the watches' view serves them now.
READS = ("GET modeldeployments", "GET deployments", "GET services", "GET configmaps")


def _reads(operator: OperatorProcess) -> dict[str, float]:
    found = operator_metrics.requests(operator_metrics.samples(operator.metrics_url))
    return {key: found.get(key, 0.0) for key in READS}


def _reconciles(operator: OperatorProcess) -> float:
    found = operator_metrics.samples(operator.metrics_url)
    return operator_metrics.total(found, "pitstop_reconciles_total")


def test_a_reconcile_that_changes_nothing_writes_nothing_and_a_deleted_child_comes_back(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    world = World(cluster, namespace)
    world.apply("1", CANARY)
    world.healthy("1")
    world.settles("the entry Service selects v1", world.entry_selects, "1")
    reads = _reads(operator)
    for i in range(3):  # each a reconcile with nothing to do: an annotation, no new generation
        before, done = _writes(operator), _reconciles(operator)
        cluster.kubectl("annotate", "--overwrite", "-n", namespace, "modeldeployment", "fraud",
                        f"bench.pitstop.dev/kick={i}")  # fmt: skip
        cluster.wait("a reconcile of the kick", lambda: _reconciles(operator) > done)  # noqa: B023
        assert _writes(operator) == before, f"kick {i}: a reconcile that changed nothing wrote"
    # Nor did they read: the ModelDeployment, its Deployments, Services and ConfigMap come
    # from the watches (a GET or LIST each per reconcile before).
    assert _reads(operator) == reads
    # Someone deletes the entry Service: the watch tells the operator, which applies it again.
    cluster.kubectl("delete", "service", "fraud", "-n", namespace)
    world.settles("the entry Service back, selecting v1", world.entry_selects, "1")
    # Nor does the operator discover the API as it goes: one GET /apis per API client
    # (the reconciles' and the leader election's), when it starts. Discovering lazily,
    # the first applies walked every API group, once per reconcile thread.
    found = operator_metrics.requests(operator_metrics.samples(operator.metrics_url))
    assert found.get("GET discovery", 0) <= 2, found


def test_a_restarted_operator_decides_from_the_watches_whole_view_not_an_empty_one(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    """Reads come from memory once Kopf's indexing has the initial lists: a restarted
    operator whose first reconciles read an empty view would find no Deployment and
    write the Healthy model back to Deploying."""
    world = World(cluster, namespace)
    world.apply("1", CANARY)
    world.healthy("1")
    world.settles("the entry Service selects v1", world.entry_selects, "1")
    before = world.md()["metadata"]["resourceVersion"]
    operator.stop()
    operator.start()
    cluster.wait("the restarted operator's first reconciles", lambda: _reconciles(operator) >= 1)
    after = world.md()
    assert after["status"]["phase"] == "Healthy"
    assert after["metadata"]["resourceVersion"] == before, "the restart rewrote the status"
