"""Two replicas, one leader, on the real control plane.

First the election itself, in this process (two `Elector`s on the chart's
ServiceAccount): one leads, the other stands by; a leader that stops renewing closes
its own fence before the other can take over; a released Lease is taken at once.

Then two real operator processes (`pitstop run --leader-elect`, the chart's
ServiceAccount token, a Lease in the release's namespace): the leader is killed
mid-canary and mid-analysis, and the standby takes each rollout to the end it would
have reached anyway, while a watch on the HTTPRoute sees every weight it ever had
(no flip-flop). Last, a leader is frozen (SIGSTOP) until the standby has taken over,
then woken with the standby frozen in turn: nothing at all is written while only the
old leader runs. The handover (SIGKILL to the standby's first write) is printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from httproute import TRAFFIC, user_route, weights
from metric_webhook import Webhook, analysis
from pitstop.devcluster import install, testing
from pitstop.k8s import client, errors
from pitstop.leadership import Elector, LeaseSettings
from replicas import Replicas
from watching import History

pytestmark = pytest.mark.integration

Object = dict[str, Any]
# Short, so that a handover takes seconds; the chart's defaults are 15 / 10 / 2
# (PITSTOP_TEST_LEASE="15,10,2" measures the handover with them).
_timing = os.environ.get("PITSTOP_TEST_LEASE", "8,5,1").split(",")
DURATION, RENEW_DEADLINE, RETRY_PERIOD = int(_timing[0]), float(_timing[1]), float(_timing[2])


# --- The election, in this process ----------------------------------------------------


def test_one_leader_its_fence_closes_before_anyone_else_may_lead(
    cluster: testing.DevCluster, release: install.Release, operator_kubeconfig: Path
) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"

    def elector(identity: str) -> Elector:
        settings = LeaseSettings(lease, release.namespace, identity, duration=3,
                                 renew_deadline=2.0, retry_period=0.5)  # fmt: skip
        return Elector(client.connect(str(operator_kubeconfig), timeout=1.0), settings)

    async def scenario() -> dict[str, float]:
        a, b = elector("a"), elector("b")
        running_a = asyncio.create_task(a.run())
        await asyncio.wait_for(a.gate.wait(), 10)
        running_b = asyncio.create_task(b.run())
        await asyncio.sleep(2)
        assert a.leading()
        assert not b.leading()
        assert not b.gate.is_set()
        with pytest.raises(errors.NotLeader):
            b.fence()
        a.fence()

        # a stops renewing without a word (as if frozen): its own fence closes after the
        # renew deadline; b may lead only a lease duration after it saw the last renewal.
        running_a.cancel()
        stopped = time.monotonic()
        while a.leading():
            await asyncio.sleep(0.05)
        fenced = time.monotonic() - stopped
        await asyncio.wait_for(b.gate.wait(), 10)
        took = time.monotonic() - stopped
        with pytest.raises(errors.NotLeader):
            a.fence()
        b.fence()

        # b shuts down: it stops writing, then releases; a new candidate takes over at
        # its first try instead of a lease duration later.
        running_b.cancel()
        b.resign()
        with pytest.raises(errors.NotLeader):
            b.fence()
        await b.release()
        released = time.monotonic()
        c = elector("c")
        running_c = asyncio.create_task(c.run())
        await asyncio.wait_for(c.gate.wait(), 10)
        taken = time.monotonic() - released
        running_c.cancel()
        return {"fenced": fenced, "took": took, "taken": taken}

    times = asyncio.run(scenario())
    # From a's last renewal (at most a retry period before it stopped): its fence closes
    # after the renew deadline (2 s), b leads no earlier than a lease duration (3 s).
    assert times["fenced"] <= 2.0 + 0.1
    assert times["took"] >= 3.0 - 0.5
    assert times["took"] - times["fenced"] >= (3.0 - 2.0) - 0.1
    assert times["taken"] < 1.5  # a released Lease is taken at the first try
    holder = cluster.kubectl("get", "lease", lease, "-n", release.namespace,
                             "-o", "jsonpath={.spec.holderIdentity}").stdout  # fmt: skip
    assert holder == "c"


# --- Two operator processes -------------------------------------------------------------


@pytest.fixture
def replicas(
    cluster: testing.DevCluster,
    crd: str,
    gateway_api: None,
    release: install.Release,
    operator_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Replicas]:
    pair = Replicas(cluster, release, operator_kubeconfig, tmp_path, duration=DURATION,
                    renew_deadline=RENEW_DEADLINE, retry_period=RETRY_PERIOD)  # fmt: skip
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()
    pair.assert_not_refused()


class World:
    """The ModelDeployment `fraud` routed through the user's HTTPRoute, and watches on
    both (every version, with its arrival time)."""

    def __init__(self, cluster: testing.DevCluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        cluster.kubectl("apply", "--server-side", "--field-manager=user", "-f", "-",
                        input=json.dumps(user_route(namespace)))  # fmt: skip
        self.watches: list[History] = []

    def apply(self, version: str, strategy: Object, **spec: Any) -> None:
        body = {"apiVersion": "pitstop.dev/v1alpha1", "kind": "ModelDeployment",
                "metadata": {"name": "fraud"},
                "spec": {"model": {"name": "fraud", "version": version},
                         "image": f"registry.example.com/ml/fraud:{version}",
                         "serving": {"replicas": 2}, "strategy": strategy,
                         "traffic": TRAFFIC, **spec}}  # fmt: skip
        self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump(body))

    def read(self) -> tuple[Object, Object]:
        md = self.cluster.get("md", "fraud", namespace=self.namespace)
        route = self.cluster.get("httproute", "fraud", namespace=self.namespace)
        assert md is not None
        assert route is not None
        return md, route

    def when(self, what: str, ok: Callable[[Object, Object], Any], timeout: float = 90) -> tuple[Object, Object]:  # fmt: skip
        def probe() -> tuple[Object, Object] | None:
            md, route = self.read()
            return (md, route) if ok(md, route) else None

        return self.cluster.wait(what, probe, timeout=timeout)

    def watch(self, resource: str) -> History:
        self.watches.append(History(self.cluster, self.namespace, resource, "fraud"))
        return self.watches[-1]

    def events(self) -> list[tuple[str, str, int, str]]:
        """The Events on the ModelDeployment (the operator's; the scheduler's and the
        controllers' are about pods): (name, reason, count, last time)."""
        found = json.loads(self.cluster.kubectl(
            "get", "events", "-n", self.namespace, "-o", "json",
            "--field-selector", "involvedObject.kind=ModelDeployment").stdout)["items"]  # fmt: skip
        return sorted((e["metadata"]["name"], e["reason"], e.get("count") or 1,
                       e.get("lastTimestamp") or "") for e in found)  # fmt: skip

    def promote(self) -> None:
        body = json.dumps({"action": "promote", "id": uuid.uuid4().hex[:8]})
        # Who asks goes with it: the chart's admission policy refuses a request without.
        user = self.cluster.kubectl("auth", "whoami", "-o",
                                    "jsonpath={.status.userInfo.username}").stdout  # fmt: skip
        self.cluster.kubectl("annotate", "md", "fraud", "-n", self.namespace,
                             f"pitstop.dev/request={body}", f"pitstop.dev/requested-by={user}",
                             "--overwrite")  # fmt: skip

    def close(self) -> None:
        for watch in self.watches:
            watch.close()


@pytest.fixture
def world(cluster: testing.DevCluster, namespace: str) -> Iterator[World]:
    found = World(cluster, namespace)
    try:
        yield found
    finally:
        found.close()


def status(md: Object) -> Object:
    found: Object = md.get("status", {})
    return found


def candidate_weight(route: Object) -> int | None:
    shown = weights(route)
    return shown[1][1] if len(shown) > 1 else None


def healthy(version: str) -> Callable[[Object, Object], bool]:
    def check(md: Object, route: Object) -> bool:
        stable = status(md).get("stable") or {}
        return (status(md).get("phase") == "Healthy" and stable.get("version") == version
                and weights(route) == [(f"fraud-{stable['revision']}", 100)])  # fmt: skip

    return check


def handover(replicas: Replicas, world: World, what: str) -> tuple[float, float]:
    """SIGKILL the leader; (seconds until the standby holds the Lease, seconds until its
    first write), printed. Its first write is the first new version of the
    ModelDeployment: a pass commits its status before anything else."""
    leader, standby = replicas.leader(), replicas.standby()
    # Until now the standby only watched: its work queue ran nothing, so its fence never
    # had a write to refuse.
    assert "stopped before writing" not in standby.log_since(0)
    mds = world.watch("modeldeployment")
    before = len(mds.versions)
    leader.kill()
    killed = time.monotonic()
    replicas.cluster.wait("the standby to take the Lease",
                          lambda: replicas.holder() == standby.identity, interval=0.05)  # fmt: skip
    took = time.monotonic() - killed
    replicas.cluster.wait("the standby's first write", lambda: len(mds.versions) > before)
    wrote = mds.versions[before][0] - killed
    print(f"\nhandover {what} (lease {DURATION}s, renew deadline {RENEW_DEADLINE:g}s, retry "
          f"{RETRY_PERIOD:g}s): SIGKILL -> Lease taken {took:.1f}s, first write {wrote:.1f}s")  # fmt: skip
    return took, wrote


def test_the_standby_finishes_a_canary_whose_leader_was_killed(
    replicas: Replicas, world: World
) -> None:
    canary = {"type": "Canary", "canary": {"steps": [
        {"weight": 10, "pause": "2s"}, {"weight": 50, "pause": "2s"}, {"weight": 80}]}}  # fmt: skip
    world.apply("1", canary)
    md, _ = world.when("v1 Healthy", healthy("1"))
    old = f"fraud-{status(md)['stable']['revision']}"
    routes = world.watch("httproute")
    world.apply("2", canary)
    md, _ = world.when("10% on v2", lambda md, route: candidate_weight(route) == 10)
    new = f"fraud-{status(md)['candidate']['revision']}"

    took, wrote = handover(replicas, world, "mid-canary")
    # A lease duration after the leader's last renewal, give or take the tries' period.
    assert DURATION - RETRY_PERIOD < took < DURATION + 3 * RETRY_PERIOD + 2
    assert wrote < took + 5

    world.when("paused at 80%", lambda md, route: candidate_weight(route) == 80
               and status(md).get("phase") == "Paused")  # fmt: skip
    world.promote()
    md, last = world.when("v2 Healthy", healthy("2"))
    assert [(h["version"], h["outcome"]) for h in status(md)["history"]] == [
        ("1", "Retired"), ("2", "Promoted")]  # fmt: skip
    assert routes.changes(last, weights) == [
        [(old, 100)],
        [(old, 90), (new, 10)],
        [(old, 50), (new, 50)],
        [(old, 20), (new, 80)],
        [(new, 100)],
    ], routes.shown


def test_the_standby_finishes_an_analysis_whose_leader_was_killed(
    replicas: Replicas, world: World, webhook: Webhook
) -> None:
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1h", "minPause": "1h"}]}}  # fmt: skip
    checks = analysis(webhook.url, interval="2s", failureLimit=2)
    world.apply("1", canary, analysis=checks)
    md, _ = world.when("v1 Healthy", healthy("1"))
    old = f"fraud-{status(md)['stable']['revision']}"
    routes = world.watch("httproute")
    world.apply("2", canary, analysis=checks)
    md, _ = world.when("50% on v2, checks passing", lambda md, route: candidate_weight(route)
                       == 50 and (status(md).get("analysis") or {}).get("verdict") == "Pass")  # fmt: skip
    new = f"fraud-{status(md)['candidate']['revision']}"

    webhook.passing = False
    md, _ = world.when("a first failed check counted",
                       lambda md, _: (status(md).get("analysis") or {}).get("failures", 0) >= 1)  # fmt: skip
    handover(replicas, world, "mid-analysis")

    # The status commits the rollback, then the route follows it.
    md, last = world.when("rolled back, all on the stable", lambda md, route: status(md).get(
        "phase") == "RolledBack" and weights(route) == [(old, 100)])  # fmt: skip
    assert status(md)["rejectedRevision"] == new.removeprefix("fraud-")
    assert status(md)["analysis"]["failures"] == 3  # failureLimit 2: the third decides
    assert status(md)["history"][-1]["outcome"] == "RolledBack"
    assert routes.changes(last, weights) == [
        [(old, 100)], [(old, 50), (new, 50)], [(old, 100)]], routes.shown  # fmt: skip


def test_a_leader_that_lost_its_lease_while_frozen_writes_nothing_after(
    replicas: Replicas, world: World, webhook: Webhook
) -> None:
    """The leader is frozen in the middle of a reconcile (waiting for its check's answer),
    and loses its Lease to the standby. Then the standby is frozen and the old leader
    woken with its answer: its reconcile goes on to write, and for as long as it cannot
    take the Lease back it runs alone — nothing is written, not the ModelDeployment, not
    the route, not an Event; its fence refused the write."""
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1h", "minPause": "1h"}]}}  # fmt: skip
    checks = analysis(webhook.url)
    world.apply("1", canary, analysis=checks)
    world.when("v1 Healthy", healthy("1"))
    world.apply("2", canary, analysis=checks)
    world.when("50% on v2, checks passing", lambda md, route: candidate_weight(route)
               == 50 and (status(md).get("analysis") or {}).get("verdict") == "Pass")  # fmt: skip

    old, new = replicas.leader(), replicas.standby()
    webhook.hold_next()
    replicas.cluster.wait("the leader mid-reconcile, waiting for its check", webhook.held.is_set)
    old.pause()
    replicas.cluster.wait("the standby to take the Lease",
                          lambda: replicas.holder() == new.identity, timeout=30)  # fmt: skip
    mds = world.watch("modeldeployment")
    seen = len(mds.versions)
    replicas.cluster.wait("the new leader writing", lambda: len(mds.versions) > seen + 1)

    new.pause()
    routes = world.watch("httproute")
    quiet_from = len(mds.versions), len(routes.versions)
    events = world.events()
    offset = old.log_size()
    webhook.release()  # the answer waits in the frozen leader's socket
    old.resume()
    woke = time.monotonic()
    # It cannot take the Lease back before a lease duration after it reads it again.
    window = DURATION - 2 * RETRY_PERIOD
    replicas.cluster.wait("the old leader running alone", lambda: time.monotonic() - woke > window,
                          timeout=window + 5)  # fmt: skip
    written = (len(mds.versions) - quiet_from[0], len(routes.versions) - quiet_from[1])
    posted = sorted(set(world.events()) - set(events))
    log = old.log_since(offset)
    new.resume()
    assert replicas.holder() == new.identity
    assert written == (0, 0), f"writes while the old leader ran alone:\n{log}"
    assert posted == [], "Events while the old leader ran alone"
    refused = log.count(f"stopped before writing: {old.identity} does not hold lease")
    assert refused >= 1, f"the woken reconcile was not fenced:\n{log}"
    assert "lost lease" in log
    print(f"\nold leader woken mid-reconcile: {refused} write(s) refused by its fence, none sent")

    world.promote()
    world.when("v2 Healthy", healthy("2"))
