"""Rollouts through a mesh, end to end: the real operator process drives a user's
Gateway API HTTPRoute or Istio VirtualService through a canary and a shadow.

The operator runs as `pitstop run`; the routes are validated by the real mesh CRDs
(see mesh_crds); pods become Ready through the controller-manager and KWOK. Every
assertion reads what the API holds, through kubectl. Manual gates are the annotation
`pitstop promote` / `pitstop abort` write.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import mesh_crds  # beside this file
import pytest
import yaml
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

Object = dict[str, Any]
Routed = list[tuple[str, int]]  # (Service, weight or percent), in the route's order
SELECTOR = "pitstop.dev/model-deployment=fraud"
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "2s"}, {"weight": 50}]}}
SHADOW = {"type": "Shadow", "shadow": {"percent": 40, "duration": "3s", "promote": "Manual"}}


@pytest.fixture(scope="module", autouse=True)
def mesh_crds_served(cluster: testing.DevCluster) -> None:
    """The mesh CRDs, served before the operator starts (it discovers them once)."""
    mesh_crds.install(cluster)


# --- One row per provider: the user's route, and how to read its first rule ----------


@dataclasses.dataclass(frozen=True)
class Mesh:
    name: str  # spec.traffic.provider
    resource: str  # for kubectl
    field: str  # spec.traffic.<field>
    route: Callable[[str], Object]  # namespace -> the user's route, before Pitstop
    routed: Callable[[Object], Routed]
    mirrored: Callable[[Object], Routed]


def gateway_route(namespace: str) -> Object:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": "infra"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
                    "backendRefs": [{"name": "fraud", "port": 80}],
                }
            ],
        },
    }


def istio_route(namespace: str) -> Object:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "hosts": ["fraud.example.com"],
            "gateways": ["infra/gateway"],
            "http": [{"name": "predict", "route": [{"destination": {"host": "fraud"}}]}],
        },
    }


def short(host: str) -> str:
    """Istio names Services by FQDN; `fraud-abc.ns.svc.cluster.local` -> `fraud-abc`."""
    return host.split(".")[0]


def istio_mirrored(obj: Object) -> Routed:
    http = obj["spec"]["http"][0]
    if "mirror" not in http:
        return []
    return [(short(http["mirror"]["host"]), round(http["mirrorPercentage"]["value"]))]


GATEWAY = Mesh(
    name="gateway-api",
    resource="httproute",
    field="httpRoute",
    route=gateway_route,
    routed=lambda obj: [
        (ref["name"], ref.get("weight", 1)) for ref in obj["spec"]["rules"][0]["backendRefs"]
    ],
    mirrored=lambda obj: [
        (f["requestMirror"]["backendRef"]["name"], f["requestMirror"]["percent"])
        for f in obj["spec"]["rules"][0].get("filters", [])
        if f["type"] == "RequestMirror"
    ],
)

ISTIO = Mesh(
    name="istio",
    resource="virtualservice",
    field="virtualService",
    route=istio_route,
    routed=lambda obj: [
        (short(d["destination"]["host"]), d.get("weight", 100))
        for d in obj["spec"]["http"][0]["route"]
    ],
    mirrored=istio_mirrored,
)

MESHES = [pytest.param(GATEWAY, id="gateway-api"), pytest.param(ISTIO, id="istio")]


# --- helpers ------------------------------------------------------------------------


def manifest(
    version: str, strategy: Object, provider: str = "service", traffic: Object | None = None
) -> str:
    spec_traffic: Object = {"provider": provider, **(traffic or {})}
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud"},
            "spec": {
                "model": {"name": "fraud", "version": version},
                "image": f"registry.example.com/ml/fraud:{version}",
                "serving": {"replicas": 2},
                "strategy": strategy,
                "traffic": spec_traffic,
            },
        }
    )


def through(mesh: Mesh, version: str, strategy: Object) -> str:
    """fraud at `version`, routed through the user's route named `fraud`."""
    return manifest(version, strategy, mesh.name, {mesh.field: {"name": "fraud"}})


def apply(cluster: testing.DevCluster, namespace: str, text: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text)


def request(cluster: testing.DevCluster, namespace: str, action: str, request_id: str) -> None:
    """What `pitstop promote fraud` / `pitstop abort fraud` write: the request, and who
    asks (the chart's admission policy holds it to the user kubectl authenticates as)."""
    body = json.dumps({"action": action, "id": request_id})
    user = cluster.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    cluster.kubectl("annotate", "md", "fraud", "-n", namespace, f"pitstop.dev/request={body}",
                    f"pitstop.dev/requested-by={user}", "--overwrite")  # fmt: skip


def get(cluster: testing.DevCluster, namespace: str, *what: str) -> Any:
    return cluster.read(*what, namespace=namespace)


def read(cluster: testing.DevCluster, namespace: str, mesh: Mesh) -> tuple[Object, Object]:
    """The ModelDeployment, then its route (one kubectl, two reads: a probe must ask both
    for what it waits for, since the operator may write in between)."""
    both = get(cluster, namespace, "modeldeployment/fraud", f"{mesh.resource}/fraud")
    md, route = both["items"]
    return md, route


def create_route(cluster: testing.DevCluster, namespace: str, mesh: Mesh) -> None:
    route = json.dumps(mesh.route(namespace))
    cluster.kubectl("apply", "--server-side", "--field-manager=user", "-f", "-", input=route)


def candidate(md: Object) -> Object:
    found: Object = md.get("status", {}).get("candidate") or {}
    return found


def condition(md: Object, type_: str) -> tuple[str, str, str]:
    found = next(c for c in md["status"]["conditions"] if c["type"] == type_)
    return found["status"], found["reason"], found.get("message", "")


def healthy(md: Object, version: str) -> bool:
    status = md.get("status", {})
    return (
        status.get("phase") == "Healthy"
        and status.get("stable", {}).get("version") == version
        and status.get("observedGeneration") == md["metadata"]["generation"]
    )


def wait_healthy(
    cluster: testing.DevCluster, namespace: str, mesh: Mesh, version: str
) -> tuple[Object, Object]:
    def probe() -> tuple[Object, Object] | None:
        md, route = read(cluster, namespace, mesh)
        stable = md["status"]["stable"]["revision"] if healthy(md, version) else None
        return (md, route) if mesh.routed(route) == [(f"fraud-{stable}", 100)] else None

    return cluster.wait(f"fraud v{version} Healthy on its route", probe, timeout=90)


def replicas(cluster: testing.DevCluster, namespace: str) -> dict[str, int]:
    """Each revision's Deployment and the replicas it asks for."""
    found = get(cluster, namespace, "deployments", "-l", SELECTOR)["items"]
    return {d["metadata"]["name"]: d["spec"]["replicas"] for d in found}


def children(cluster: testing.DevCluster, namespace: str) -> dict[str, list[str]]:
    """Names of the Deployments and Services the operator made, by kind."""
    found = get(cluster, namespace, "deployments,services", "-l", SELECTOR)["items"]
    by_kind: dict[str, list[str]] = {"Deployment": [], "Service": []}
    for item in found:
        by_kind[item["kind"]].append(item["metadata"]["name"])
    return {kind: sorted(names) for kind, names in by_kind.items()}


class RouteHistory:
    """Every version of the route, as `kubectl get --watch` delivers it: nothing in
    between two polls can be missed, so a flip-flop of weights cannot hide."""

    def __init__(self, cluster: testing.DevCluster, namespace: str, mesh: Mesh) -> None:
        self._mesh = mesh
        self._versions: list[Object] = []
        self._watch = subprocess.Popen(
            [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", "get",
             mesh.resource, "fraud", "-n", namespace, "-o", "json", "--watch"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._watch.stdout is not None
        decoder, text = json.JSONDecoder(), ""
        for line in self._watch.stdout:  # objects come pretty-printed, one after another
            text += line
            try:
                obj, _ = decoder.raw_decode(text.strip())
            except json.JSONDecodeError:
                continue
            self._versions.append(obj)
            text = ""

    def close(self) -> None:
        self._watch.terminate()
        self._watch.wait(timeout=10)
        self._reader.join(timeout=10)
        if self._watch.stdout is not None:
            self._watch.stdout.close()

    def splits(self, cluster: testing.DevCluster, last: Object) -> list[Routed]:
        """The weights the route went through up to `last` (a version read directly,
        which the watch may deliver a moment later), each change once."""
        version = last["metadata"]["resourceVersion"]

        def delivered() -> list[Object] | None:
            versions = list(self._versions)
            seen = [v["metadata"]["resourceVersion"] for v in versions]
            return versions[: seen.index(version) + 1] if version in seen else None

        seen: list[Routed] = []
        for obj in cluster.wait(f"the watch to deliver {version}", delivered, timeout=30):
            routed = self._mesh.routed(obj)
            if not seen or seen[-1] != routed:
                seen.append(routed)
        return seen


@pytest.fixture
def route_history(
    cluster: testing.DevCluster, namespace: str
) -> Iterator[Callable[[Mesh], RouteHistory]]:
    started: list[RouteHistory] = []

    def start(mesh: Mesh) -> RouteHistory:
        started.append(RouteHistory(cluster, namespace, mesh))
        return started[-1]

    yield start
    for history in started:
        history.close()


# --- tests --------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", MESHES)
def test_canary_weights_the_route_step_by_step_and_promote_finishes_it(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess, mesh: Mesh
) -> None:
    create_route(cluster, namespace, mesh)
    apply(cluster, namespace, through(mesh, "1", CANARY))
    md, _ = wait_healthy(cluster, namespace, mesh, "1")
    old = md["status"]["stable"]["revision"]

    apply(cluster, namespace, through(mesh, "2", CANARY))

    def at_step(step: int, weight: int) -> tuple[Object, Object] | None:
        md, route = read(cluster, namespace, mesh)
        new = candidate(md).get("revision")
        ok = (
            candidate(md).get("step") == step
            and md["status"]["traffic"]["candidate"] == weight
            and mesh.routed(route) == [(f"fraud-{old}", 100 - weight), (f"fraud-{new}", weight)]
        )
        return (md, route) if ok else None

    md, route = cluster.wait("step 1: 10% to the candidate", lambda: at_step(0, 10), timeout=90)
    new = candidate(md)["revision"]
    assert candidate(md)["state"] == "Canary"
    assert md["status"]["phase"] == "Progressing"
    assert md["status"]["traffic"] == {
        "stable": 90, "candidate": 10, "mirrored": 0, "summary": "90% / 10%"
    }  # fmt: skip
    assert mesh.mirrored(route) == []
    # Exact weights: the candidate runs full size from the first step.
    assert replicas(cluster, namespace) == {f"fraud-{old}": 2, f"fraud-{new}": 2}

    # The last step has no pause: it holds at 50% until someone promotes.
    def paused_at_50() -> tuple[Object, Object] | None:
        found = at_step(1, 50)
        return found if found and found[0]["status"]["phase"] == "Paused" else None

    md, route = cluster.wait("step 2: 50%, paused", paused_at_50, timeout=60)
    assert md["status"]["traffic"]["summary"] == "50% / 50%"
    paused = condition(md, "Paused")
    assert paused[:2] == ("True", "AwaitingPromotion")
    assert "pitstop promote fraud" in paused[2]
    assert condition(md, "Progressing")[:2] == ("True", "AwaitingPromotion")
    assert replicas(cluster, namespace) == {f"fraud-{old}": 2, f"fraud-{new}": 2}

    request(cluster, namespace, "promote", "p1")
    md, route = wait_healthy(cluster, namespace, mesh, "2")
    status = md["status"]
    assert status["stable"]["revision"] == new
    assert "candidate" not in status
    assert status["lastRequest"] == "p1"
    assert status["traffic"]["summary"] == "100% stable"
    assert (mesh.routed(route), mesh.mirrored(route)) == ([(f"fraud-{new}", 100)], [])
    assert [(h["revision"], h["outcome"]) for h in status["history"]] == [
        (old, "Retired"),
        (new, "Promoted"),
    ]
    cluster.wait(
        "the old revision scaled to zero",
        lambda: replicas(cluster, namespace) == {f"fraud-{old}": 0, f"fraud-{new}": 2},
    )


@pytest.mark.parametrize("mesh", MESHES)
def test_shadow_mirrors_to_the_candidate_and_abort_takes_the_mirror_away(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess, mesh: Mesh
) -> None:
    create_route(cluster, namespace, mesh)
    apply(cluster, namespace, through(mesh, "1", SHADOW))
    md, _ = wait_healthy(cluster, namespace, mesh, "1")
    old = md["status"]["stable"]["revision"]

    apply(cluster, namespace, through(mesh, "2", SHADOW))

    def mirroring(phase: str) -> tuple[Object, Object] | None:
        md, route = read(cluster, namespace, mesh)
        new = candidate(md).get("revision")
        ok = (
            md["status"]["phase"] == phase
            and candidate(md).get("state") == "Shadow"
            and md["status"]["traffic"]["mirrored"] == 40
            and mesh.mirrored(route) == [(f"fraud-{new}", 40)]
        )
        return (md, route) if ok else None

    md, route = cluster.wait("mirroring 40%", lambda: mirroring("Progressing"), timeout=90)
    new = candidate(md)["revision"]
    # The candidate never answers users: it is in the route, at weight 0.
    assert mesh.routed(route) == [(f"fraud-{old}", 100), (f"fraud-{new}", 0)]
    assert replicas(cluster, namespace) == {f"fraud-{old}": 2, f"fraud-{new}": 2}
    assert md["status"]["traffic"] == {
        "stable": 100, "candidate": 0, "mirrored": 40, "summary": "100% stable + 40% mirrored"
    }  # fmt: skip

    md, route = cluster.wait("shadow done, paused", lambda: mirroring("Paused"), timeout=60)
    assert condition(md, "Paused")[:2] == ("True", "AwaitingPromotion")

    request(cluster, namespace, "abort", "a1")

    def rolled_back() -> tuple[Object, Object] | None:
        md, route = read(cluster, namespace, mesh)
        ok = (
            md["status"]["phase"] == "RolledBack"
            and mesh.routed(route) == [(f"fraud-{old}", 100)]
            and mesh.mirrored(route) == []
        )
        return (md, route) if ok else None

    md, route = cluster.wait("rolled back: the mirror gone", rolled_back, timeout=60)
    status = md["status"]
    assert status["rejectedRevision"] == new
    assert status["stable"]["revision"] == old
    assert "candidate" not in status
    assert status["traffic"]["summary"] == "100% stable"
    assert [(h["revision"], h["outcome"]) for h in status["history"]] == [
        (old, "Promoted"),
        (new, "Aborted"),
    ]
    assert condition(md, "Progressing")[:2] == ("False", "RevisionRejected")
    cluster.wait(
        "the rejected candidate scaled to zero",
        lambda: replicas(cluster, namespace) == {f"fraud-{old}": 2, f"fraud-{new}": 0},
    )


@pytest.mark.parametrize("mesh", MESHES)
def test_operator_killed_at_each_canary_step_resumes_without_flip_flop(
    cluster: testing.DevCluster,
    namespace: str,
    operator: OperatorProcess,
    mesh: Mesh,
    route_history: Callable[[Mesh], RouteHistory],
) -> None:
    create_route(cluster, namespace, mesh)
    apply(cluster, namespace, through(mesh, "1", CANARY))
    md, _ = wait_healthy(cluster, namespace, mesh, "1")
    old = md["status"]["stable"]["revision"]
    history = route_history(mesh)

    apply(cluster, namespace, through(mesh, "2", CANARY))

    def weighted(weight: int, phase: str = "Progressing") -> Object | None:
        md, route = read(cluster, namespace, mesh)
        at = [w for _, w in mesh.routed(route)][1:] == [weight]
        return md if at and md["status"]["phase"] == phase else None

    cluster.wait("10% to the candidate", lambda: weighted(10), timeout=90)
    operator.kill()
    operator.start()
    md = cluster.wait("paused at 50%", lambda: weighted(50, "Paused"), timeout=60)
    new = candidate(md)["revision"]
    operator.kill()
    operator.start()

    request(cluster, namespace, "promote", "p1")
    md, route = wait_healthy(cluster, namespace, mesh, "2")
    assert md["status"]["stable"]["revision"] == new
    assert [(h["revision"], h["outcome"]) for h in md["status"]["history"]] == [
        (old, "Retired"),
        (new, "Promoted"),
    ]
    assert history.splits(cluster, route) == [
        [(f"fraud-{old}", 100)],
        [(f"fraud-{old}", 90), (f"fraud-{new}", 10)],
        [(f"fraud-{old}", 50), (f"fraud-{new}", 50)],
        [(f"fraud-{new}", 100)],
    ]
    # One Deployment and one Service per revision, and the entry Service for in-cluster
    # callers (the route splits the traffic; the entry selects the stable).
    revisions = sorted([f"fraud-{old}", f"fraud-{new}"])
    assert children(cluster, namespace) == {
        "Deployment": revisions,
        "Service": sorted(["fraud", *revisions]),
    }


def test_a_missing_route_is_refused_and_the_stable_keeps_serving(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    apply(cluster, namespace, manifest("1", CANARY))

    def serving() -> Object | None:
        md: Object = get(cluster, namespace, "md", "fraud")
        return md if healthy(md, "1") else None

    stable = cluster.wait("fraud v1 Healthy", serving, timeout=90)["status"]["stable"]["revision"]

    # v2 moves to a gateway whose route the user has not created (yet).
    apply(
        cluster, namespace, manifest("2", CANARY, "gateway-api", {"httpRoute": {"name": "fraud"}})
    )

    def refused() -> Object | None:
        md = get(cluster, namespace, "md", "fraud")
        current = md["status"].get("observedGeneration") == md["metadata"]["generation"]
        return md if current and condition(md, "Progressing")[1] == "TrafficUnavailable" else None

    md = cluster.wait("Progressing TrafficUnavailable", refused, timeout=60)
    progressing = condition(md, "Progressing")
    assert progressing[0] == "False"
    assert (
        f"HTTPRoute {namespace}/fraud (spec.traffic.httpRoute.name) does not exist"
        in (progressing[2])
    )
    status = md["status"]
    assert status["stable"]["revision"] == stable
    assert "candidate" not in status
    assert condition(md, "Ready")[:2] == ("True", "StableAvailable")
    assert replicas(cluster, namespace) == {f"fraud-{stable}": 2}
    entry = get(cluster, namespace, "service", "fraud")
    assert entry["spec"]["selector"]["pitstop.dev/revision"] == stable

    # Once the route exists, the rollout starts on it by itself.
    create_route(cluster, namespace, GATEWAY)
    cluster.wait(
        "10% on the new route",
        lambda: [w for _, w in GATEWAY.routed(read(cluster, namespace, GATEWAY)[1])] == [90, 10],
        timeout=60,
    )


@pytest.mark.parametrize("mesh", MESHES)
def test_a_canary_whose_pods_stop_being_ready_keeps_no_weight_until_they_are_back(
    cluster: testing.DevCluster,
    namespace: str,
    operator: OperatorProcess,
    mesh: Mesh,
    route_history: Callable[[Mesh], RouteHistory],
) -> None:
    """A weight on a candidate without a ready pod sends users to a Service without
    endpoints (503s): all traffic stays on the stable until its pods are ready again."""
    slow = {"type": "Canary", "canary": {"steps": [{"weight": 10, "pause": "1h"}, {"weight": 50}]}}
    create_route(cluster, namespace, mesh)
    apply(cluster, namespace, through(mesh, "1", slow))
    md, _ = wait_healthy(cluster, namespace, mesh, "1")
    old = md["status"]["stable"]["revision"]
    history = route_history(mesh)
    apply(cluster, namespace, through(mesh, "2", slow))

    def routed(weight: int) -> tuple[Object, Object] | None:
        md, route = read(cluster, namespace, mesh)
        ok = [w for _, w in mesh.routed(route)][1:2] == [weight] or (
            weight == 0 and mesh.routed(route) == [(f"fraud-{old}", 100)]
        )
        return (md, route) if ok and md["status"]["traffic"]["candidate"] == weight else None

    md, _ = cluster.wait("10% to the candidate", lambda: routed(10), timeout=90)
    new = candidate(md)["revision"]
    crashed = [p["metadata"]["name"] for p in get(
        cluster, namespace, "pods", "-l", f"pitstop.dev/revision={new}")["items"]]  # fmt: skip
    for pod in crashed:
        cluster.kubectl("annotate", "pod", pod, "-n", namespace,
                        "pitstop.dev/kwok-fate=crash-loop")  # fmt: skip

    md, route = cluster.wait("no weight on the crashed candidate", lambda: routed(0), timeout=60)
    assert (candidate(md)["state"], candidate(md)["step"]) == ("Canary", 0)  # it waits
    progressing = condition(md, "Progressing")
    assert progressing[:2] == ("True", "WaitingForCandidatePods")
    assert "2/2 pods CrashLoopBackOff" in progressing[2]
    stalled_split = mesh.routed(route)

    cluster.kubectl("delete", "pod", *crashed, "-n", namespace)  # new pods start healthy

    def recovered() -> tuple[Object, Object] | None:
        # Weight comes back with the first ready pod; the deadline's clock stops once
        # all are ready (possibly a pass later).
        found = routed(10)
        return found if found and "waitingSince" not in candidate(found[0]) else None

    md, route = cluster.wait("10% again once ready", recovered, timeout=60)
    assert history.splits(cluster, route) == [
        [(f"fraud-{old}", 100)],
        [(f"fraud-{old}", 90), (f"fraud-{new}", 10)],
        stalled_split,
        [(f"fraud-{old}", 90), (f"fraud-{new}", 10)],
    ]
    assert dict(stalled_split).get(f"fraud-{new}", 0) == 0


def _supports(cluster: testing.DevCluster, gateway_class: str, *features: str) -> None:
    """What the implementation publishes (its controller writes this status)."""
    status = {"status": {"supportedFeatures": [{"name": f} for f in sorted(features)]}}
    cluster.kubectl("patch", "gatewayclass", gateway_class, "--subresource=status",
                    "--type=merge", "-p", json.dumps(status))  # fmt: skip


def test_a_shadow_waits_where_the_gateway_cannot_mirror_and_starts_once_it_can(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    """The route's Gateway is implemented by a GatewayClass that lists its features
    without RequestMirror (as Traefik v3.7.13's would: its source answers 500 to every
    request of a rule with that filter): v2's shadow does not start, the route stays as
    it was, the condition says why; once the class lists the features, the shadow
    starts by itself."""
    gateway_class = f"weights-only-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": gateway_class},
        "spec": {"controllerName": "example.com/weights-only"},
    }))  # fmt: skip
    try:
        _supports(cluster, gateway_class, "Gateway", "HTTPRoute")
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "web"},
            "spec": {"gatewayClassName": gateway_class,
                     "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
        }))  # fmt: skip
        route = gateway_route(namespace)
        route["spec"]["parentRefs"] = [{"name": "web"}]
        cluster.kubectl("apply", "--server-side", "--field-manager=user", "-f", "-",
                        input=json.dumps(route))  # fmt: skip
        apply(cluster, namespace, through(GATEWAY, "1", SHADOW))
        md, _ = wait_healthy(cluster, namespace, GATEWAY, "1")
        old = md["status"]["stable"]["revision"]

        apply(cluster, namespace, through(GATEWAY, "2", SHADOW))

        def waiting() -> Object | None:
            md = get(cluster, namespace, "md", "fraud")
            current = md["status"].get("observedGeneration") == md["metadata"]["generation"]
            return (
                md if current and condition(md, "Progressing")[1] == "TrafficUnavailable" else None
            )

        md = cluster.wait("Progressing TrafficUnavailable", waiting, timeout=60)
        message = condition(md, "Progressing")[2]
        assert f"GatewayClass {gateway_class} (of Gateway {namespace}/web)" in message
        assert "HTTPRouteRequestMirror or HTTPRouteRequestPercentageMirror" in message
        assert "candidate" not in md["status"]
        assert condition(md, "Ready")[:2] == ("True", "StableAvailable")
        _, route = read(cluster, namespace, GATEWAY)
        assert GATEWAY.routed(route) == [(f"fraud-{old}", 100)]
        assert GATEWAY.mirrored(route) == []
        assert replicas(cluster, namespace) == {f"fraud-{old}": 2}

        _supports(cluster, gateway_class, "Gateway", "HTTPRoute", "HTTPRouteRequestMirror",
                  "HTTPRouteRequestPercentageMirror")  # fmt: skip

        def mirroring() -> str | None:
            md, route = read(cluster, namespace, GATEWAY)
            new = candidate(md).get("revision")
            return new if new and GATEWAY.mirrored(route) == [(f"fraud-{new}", 40)] else None

        cluster.wait("the shadow mirroring 40% by itself", mirroring, timeout=90)
    finally:
        cluster.kubectl("delete", "gatewayclass", gateway_class, "--wait=false", check=False)
