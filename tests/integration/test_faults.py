"""Faults survived, counted: nine rollouts on the real control plane while the operator
is killed again and again, the API server restarts twice and the leader changes hands.

Nine ModelDeployments, each strategy (BlueGreen, Canary, Shadow) through each traffic
provider (service, gateway-api, istio), go from v1 to v2 at once. A webhook metric
decides each one's fate: five pass and must be promoted, four start failing some
seconds into their analysis and must be rolled back. The promoted canaries and shadows
get no answer from the webhook (inconclusive: their step holds) from their last step
on until the faults are over, so that every fault lands while rollouts are under way,
however slowly a loaded machine carries the faults out. Two replicas of the operator run
with leader election (the chart's ServiceAccount token, a Lease), and a fault thread
(`faults`, its schedule drawn from a seed that is printed) kills one of them 50 times
at random moments and starts it again, restarts the kube-apiserver in place (once
gracefully, once with SIGKILL; etcd keeps running), and once kills the leader and keeps
it dead until the standby leads.

The test's eye is etcd itself (`etcd_history`): every version of every ModelDeployment,
route, Service, ConfigMap and Deployment, in the order they were stored, across the API
server's restarts. From it, the test proves:

- **No rollout lost.** Each ModelDeployment ends exactly where it would have ended
  undisturbed: promoted (Healthy, v2 stable, nothing rejected, history `v1 Retired, v2
  Promoted`) or rolled back (RolledBack, v1 stable, v2 rejected, history `v1 Promoted,
  v2 RolledBack` — for BlueGreen, whose analysis runs after the switch, `v1 Retired, v2
  RolledBack, v1 Promoted`); all traffic on the stable, nothing mirrored, the other
  revision scaled to zero.
- **No flip-flop.** What users get of the candidate, read from the route after every
  stored write, is (weight, mirrored percent): the HTTPRoute's backendRefs weights and
  RequestMirror filter, the VirtualService's route weights and mirror; with `service`,
  the entry Service's selector (the stable: 0, the candidate: 100, every revision: the
  candidate's share of the Deployments' replicas) and the mirror ConfigMap. Until the
  rollback is committed it only moves forward: the weight never goes down, and while it
  stays the mirror never goes down (once the weight is 100 the candidate *is*
  production and the mirror no longer counts); and it only takes the values of the
  strategy's steps (Canary: its step weights, as replicas make them with `service`;
  BlueGreen: 0 then 100; Shadow: the mirror, then 100). The same holds for the entry
  Service that in-cluster callers use with a mesh, and for the status: a canary's step
  never goes back, a promoted v2 never stops being the stable.
- **No candidate re-exposed.** Every route, selector or mirror version stored after the
  status that says RolledBack gives the rejected revision nothing (weight 0, mirror 0),
  its Deployment is never scaled up again, and no later status names it as candidate
  or stable. etcd's revision is the resourceVersion, one counter for all objects, so
  "after" is exact.
- **The stable keeps its pods.** v1's pod template never changes, and it keeps its
  replicas for as long as it serves.

It prints the seed (`PITSTOP_FAULT_SEED=<seed>` runs the same schedule again) and the
counts: `pytest tests/integration/test_faults.py -s`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import etcd_history
import faults
import httpx
import pytest
import yaml
from metric_webhook import Webhook
from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import install, testing
from replicas import Replicas
from rollout_history import TRAFFIC_KINDS, Findings, Now, Scenario, check, end_state, exposure, own

pytestmark = pytest.mark.integration

Object = dict[str, Any]
REPLICAS = 2
# The leader-election test's timing: a handover in about ten seconds.
DURATION, RENEW_DEADLINE, RETRY_PERIOD = 8, 5.0, 1.0
STEPS = (20, 50, 80)
MIRROR = 50


def _scenario(strategy: str, provider: str, outcome: str) -> Scenario:
    return Scenario(strategy, provider, outcome, REPLICAS, STEPS, MIRROR)


# Each strategy and each provider has both outcomes.
SCENARIOS = [
    _scenario("Canary", "service", "Promoted"),
    _scenario("Canary", "gateway-api", "RolledBack"),
    _scenario("Canary", "istio", "Promoted"),
    _scenario("BlueGreen", "service", "RolledBack"),
    _scenario("BlueGreen", "gateway-api", "Promoted"),
    _scenario("BlueGreen", "istio", "RolledBack"),
    _scenario("Shadow", "service", "Promoted"),
    _scenario("Shadow", "gateway-api", "RolledBack"),
    _scenario("Shadow", "istio", "Promoted"),
]

# Undisturbed, a rollout meant to be promoted takes two and a half minutes or more,
# about as long as the faults take on an idle machine.
STRATEGIES: dict[str, Object] = {
    # A step lasts at least 50 s, and ends as soon as the metric passes after that.
    "Canary": {"type": "Canary", "canary": {"steps": [
        {"weight": w, "minPause": "50s", "pause": "10m"} for w in STEPS]}},
    # The switch comes as soon as the candidate is ready; the analysis runs after it,
    # for postPromotionWindow, with the old stable kept up to go back to.
    "BlueGreen": {"type": "BlueGreen", "blueGreen": {"autoPromote": True, "scaleDownDelay": "0s"}},
    # Mirrored for at least 150 s, then a blue/green switch.
    "Shadow": {"type": "Shadow", "shadow": {"percent": MIRROR, "minDuration": "150s",
                                             "duration": "10m", "promote": "Auto"},
               "blueGreen": {"scaleDownDelay": "0s"}},
}  # fmt: skip
POST_PROMOTION = {"BlueGreen": "150s"}
# Seconds after its first check that a rollout meant to be rolled back starts failing:
# in the second step of a canary, in the shadow phase, in the post-promotion window;
# long before any of them could be promoted.
FAIL_AFTER = {"Canary": 75.0, "BlueGreen": 60.0, "Shadow": 60.0}


def manifest(s: Scenario, version: str, url: str) -> str:
    analysis: Object = {"interval": "1s", "failureLimit": 0,
                        "metrics": [{"name": "gate", "webhook": {"url": url}}]}  # fmt: skip
    if s.strategy in POST_PROMOTION:
        analysis["postPromotionWindow"] = POST_PROMOTION[s.strategy]
    traffic: Object = {"provider": s.provider}
    if s.route_kind == "HTTPRoute":
        traffic["httpRoute"] = {"name": s.name}
    elif s.route_kind == "VirtualService":
        traffic["virtualService"] = {"name": s.name}
    return yaml.safe_dump({
        "apiVersion": "pitstop.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": s.name},
        "spec": {"model": {"name": "fraud", "version": version},
                 "image": f"registry.example.com/ml/fraud:{version}",
                 "serving": {"replicas": REPLICAS}, "strategy": STRATEGIES[s.strategy],
                 "traffic": traffic, "analysis": analysis},
    })  # fmt: skip


def user_route(s: Scenario, namespace: str) -> Object | None:
    """The route a user made before Pitstop: all traffic to the entry Service."""
    if s.route_kind == "HTTPRoute":
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": s.name, "namespace": namespace},
                "spec": {"parentRefs": [{"name": "gateway", "namespace": "infra"}],
                         "rules": [{"backendRefs": [{"name": s.name, "port": 80}]}]}}  # fmt: skip
    if s.route_kind == "VirtualService":
        return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": s.name, "namespace": namespace},
                "spec": {"hosts": [f"{s.name}.example.com"], "gateways": ["infra/gateway"],
                         "http": [{"route": [{"destination": {"host": s.name}}]}]}}  # fmt: skip
    return None


# Seconds after its first check from which a rollout meant to be promoted gets no
# answer (the metric stays inconclusive, the step holds) until the faults are over:
# in a canary's last step (80%), in the shadow phase. So every fault of the plan lands
# while rollouts are under way, however slowly the machine carries the plan out, and
# the held ones are promoted once it is done. BlueGreen is not held: its analysis runs
# after the switch, and its window ends it either way.
HOLD_AFTER = {"Canary": 110.0, "Shadow": 30.0}


class Verdicts:
    """The webhook's answers: a rollout meant to be promoted passes (and from HOLD_AFTER
    on, until `faults_over` is set, gets no answer); one meant to be rolled back passes
    at first, then fails from FAIL_AFTER seconds after its first check on (v1 is never
    checked: a first revision has nothing to compare with)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.faults_over = threading.Event()
        self.held: set[str] = set()  # rollouts that were held for the faults
        self._lock = threading.Lock()
        self._by_name = {s.name: s for s in SCENARIOS}

    def __call__(self, context: Object) -> bool | None:
        s = self._by_name[context["name"]]
        with self._lock:
            first = self.first.setdefault(s.name, time.monotonic())
        since = time.monotonic() - first
        if s.outcome == "RolledBack":
            return since < FAIL_AFTER[s.strategy]
        if since >= HOLD_AFTER.get(s.strategy, float("inf")) and not self.faults_over.is_set():
            self.held.add(s.name)
            return None
        return True


KINDS = (etcd_history.MODEL_DEPLOYMENT, etcd_history.HTTP_ROUTE, etcd_history.VIRTUAL_SERVICE,
         etcd_history.SERVICE, etcd_history.CONFIG_MAP, etcd_history.DEPLOYMENT)  # fmt: skip


def read(api: httpx.Client, namespace: str) -> Now | None:
    """Every object the rollouts involve; None while the API server does not answer."""
    found: dict[tuple[str, str], Object] = {}
    for kind in KINDS:
        try:
            response = api.get(kind.path.format(ns=namespace))
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        found |= {(kind.name, i["metadata"]["name"]): i for i in response.json()["items"]}
    return Now(found)


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
    # A restarted API server refuses everyone until it is ready: not a missing rule.
    for process in pair.processes.values():
        process.assert_not_refused(devcluster.outages(cluster.state_dir))


@pytest.fixture
def verdicts() -> Verdicts:
    return Verdicts()


@pytest.fixture
def webhook(verdicts: Verdicts) -> Iterator[Webhook]:
    hook = Webhook(decide=verdicts)
    try:
        yield hook
    finally:
        hook.close()


# About 4 minutes of faults on an idle machine; on 2 cores shared with heavy work, 50
# operator restarts (each a Python start-up) took 15. The held rollouts end within
# their last steps' minPause (50 s each) once the faults are over.
FAULTS_SECONDS, AFTER_FAULTS_SECONDS = 1800, 400


@pytest.mark.timeout(FAULTS_SECONDS + AFTER_FAULTS_SECONDS + 300)
def test_rollouts_survive_kills_apiserver_restarts_and_a_handover(
    cluster: testing.DevCluster,
    namespace: str,
    release: install.Release,
    replicas: Replicas,
    webhook: Webhook,
    verdicts: Verdicts,
) -> None:
    seed = int(os.environ.get("PITSTOP_FAULT_SEED") or random.randrange(1 << 32))
    print(f"\nfault seed {seed} (PITSTOP_FAULT_SEED={seed} replays the schedule)")
    began = time.monotonic()
    api = etcd_history.admin_client(cluster)
    for s in SCENARIOS:
        route = user_route(s, namespace)
        if route is not None:
            cluster.kubectl("apply", "--server-side", "--field-manager=user", "-f", "-",
                            input=json.dumps(route))  # fmt: skip
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest(s, "1", webhook.url))

    def v1_everywhere() -> dict[str, str] | None:
        now, old = read(api, namespace), {}
        for s in SCENARIOS:
            st = ((now.get("ModelDeployment", s.name) if now else None) or {}).get("status") or {}
            stable = (st.get("stable") or {}).get("revision")
            if now is None or st.get("phase") != "Healthy" or stable is None:
                return None
            if exposure(s, now.objects, stable) != (100, 0):
                return None
            old[s.name] = stable
        return old

    old = cluster.wait("v1 Healthy and routed, everywhere", v1_everywhere, timeout=120)

    recorder = etcd_history.Recorder(cluster, [(kind, namespace) for kind in KINDS])
    transitions = lease_transitions(api, release.namespace, replicas.lease)
    injector = faults.Faults(cluster, replicas, faults.plan(seed), seed)
    verdicts.faults_over = injector.over
    try:
        for s in SCENARIOS:
            cluster.kubectl(
                "apply", "-n", namespace, "-f", "-", input=manifest(s, "2", webhook.url)
            )
        rolling = time.monotonic()
        injector.start()
        ended, new = wait_for_the_end(cluster, api, namespace, old, injector)
        injector.stop()
        assert injector.error is None, f"the fault thread failed: {injector.error!r}"
        recorder.caught_up()
        versions = [v for v in recorder.versions() if v.namespace == namespace]
        findings = {s.name: check(s, [v for v in versions if own(s, v)], old[s.name], new[s.name])
                    for s in SCENARIOS}  # fmt: skip
        violations = [f"{name}: {text}" for name, found in findings.items()
                      for text in found.violations]  # fmt: skip
        # The Lease counts its changes of hands itself, as client-go's election does.
        handovers = lease_transitions(api, release.namespace, replicas.lease) - transitions
        stored = Counter(v.kind for v in versions if v.revision > recorder.start)
        report(injector, handovers, stored, findings, ended, verdicts.held, rolling, began,
               violations)  # fmt: skip
        assert not violations, "\n".join(violations)
        assert injector.counts["kills"] >= 50
        assert kills_before(injector, max(ended.values())) == injector.counts["kills"], (
            "a SIGKILL landed after every rollout had ended"
        )
        assert not injector.exited, "replicas exited by themselves:\n" + "\n".join(injector.exited)
    finally:
        injector.stop()
        recorder.close()
        api.close()


def lease_transitions(api: httpx.Client, namespace: str, name: str) -> int:
    response = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    response.raise_for_status()
    return int(response.json()["spec"].get("leaseTransitions") or 0)


def wait_for_the_end(
    cluster: testing.DevCluster,
    api: httpx.Client,
    namespace: str,
    old: dict[str, str],
    injector: faults.Faults,
) -> tuple[dict[str, float], dict[str, str]]:
    """Wait until every rollout is where it would have ended undisturbed, and the faults
    are over; (when each got there for good, each one's v2 revision)."""
    ended: dict[str, float] = {}
    new: dict[str, str] = {}

    def all_ended() -> bool:
        now = read(api, namespace)
        if now is None:
            return False
        for s in SCENARIOS:
            differences, revision = end_state(s, now, old[s.name])
            if revision is not None:
                new[s.name] = revision
            if differences:
                ended.pop(s.name, None)
            else:
                ended.setdefault(s.name, time.monotonic())
        return len(ended) == len(SCENARIOS) and not injector.is_alive()

    try:
        # The faults take as long as the machine makes them (each kill waits for a live
        # replica; each kill thread's wait has its own deadline); the rollouts get a
        # deadline of their own from the moment the faults are over.
        cluster.wait("the faults over", lambda: (all_ended(), injector.over.is_set())[1],
                     timeout=FAULTS_SECONDS, interval=2.0)  # fmt: skip
        cluster.wait("every rollout at its end", all_ended, timeout=AFTER_FAULTS_SECONDS,
                     interval=2.0)  # fmt: skip
    except AssertionError:
        now = cluster.wait("the API server", lambda: read(api, namespace))
        report = {s.name: end_state(s, now, old[s.name])[0] for s in SCENARIOS}
        raise AssertionError(
            f"not where undisturbed rollouts end (last faults {injector.log[-3:]}, fault "
            f"thread error {injector.error!r}):\n" + yaml.safe_dump(report)
        ) from None
    return ended, new


def kills_before(injector: faults.Faults, moment: float) -> int:
    return sum(1 for at, what in injector.log if "SIGKILL" in what and at < moment)


def report(
    injector: faults.Faults,
    handovers: int,
    stored: Counter[str],
    findings: dict[str, Findings],
    ended: dict[str, float],
    held: set[str],
    rolling: float,
    began: float,
    violations: list[str],
) -> None:
    counts, now = injector.counts, time.monotonic()
    during = kills_before(injector, max(ended.values()))
    outcomes = Counter(s.outcome for s in SCENARIOS)
    print(f"faults, over {now - rolling:.0f}s of rollouts ({now - began:.0f}s in all):")
    print(f"  operator SIGKILLs:  {counts['kills']} (of the leader {counts['kills of the leader']},"
          f" the standby {counts['kills of the standby']}, a replica while nobody led "
          f"{counts['kills of the replica while nobody led']}); {during} while rollouts were "
          "under way")  # fmt: skip
    print(f"  apiserver restarts: {counts['apiserver restarts']}, etcd kept (away "
          + ", ".join(f"{t:.1f}s" for t in injector.restarts) + ")")  # fmt: skip
    print(f"  leader handovers:   {handovers} (the Lease changed hands; one forced, killing the "
          "leader and keeping it dead: the standby took the Lease after "
          + ", ".join(f"{t:.1f}s" for t in injector.handovers) + ")")  # fmt: skip
    print(f"  replicas that exited by themselves: {counts['replicas that exited by themselves']}")
    print(f"versions stored: {sum(stored[k] for k in TRAFFIC_KINDS)} of routes, selectors and "
          "mirrors (" + ", ".join(f"{k} {stored[k]}" for k in TRAFFIC_KINDS) + f"), "
          f"{stored['Deployment']} of Deployments, {stored['ModelDeployment']} of "
          "ModelDeployments")  # fmt: skip
    print(f"rollouts: {outcomes['Promoted']} promoted, {outcomes['RolledBack']} rolled back, as "
          f"their metric decided ({len(held)} promoted ones held, inconclusive, until the "
          "faults were over); each at its end after (SIGKILLs while it rolled):")  # fmt: skip
    for s in SCENARIOS:
        path = " -> ".join(f"{w}%" + (f" +{m}% mirrored" if m else "")
                           for w, m in findings[s.name].exposures)  # fmt: skip
        at = ended[s.name]
        print(f"  {s.name:21} {s.outcome:10} {at - rolling:4.0f}s ({kills_before(injector, at):2})"
              f" the candidate got {path}")  # fmt: skip
    print(f"violations: {len(violations)}")
