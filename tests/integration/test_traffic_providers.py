"""The gateway-api and istio providers against the real API server and real mesh CRDs.

Each provider object is built over a real KubeClient with the operator's credentials
(the chart's ServiceAccount: its RBAC must allow what the provider does); what it
writes is validated by the Gateway API and Istio CRD schemas (see mesh_crds), and every
assertion reads the object back through kubectl, not through the provider.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mesh_crds  # beside this file
import pytest
import yaml
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import testing
from pitstop.k8s import client
from pitstop.traffic.gateway_api import GatewayApiProvider
from pitstop.traffic.istio import IstioProvider
from pitstop.traffic.provider import Provider, Split

pytestmark = pytest.mark.integration

Object = dict[str, Any]
S, C = "aaaaaaaaaa", "bbbbbbbbbb"  # revision hashes of stable and candidate


@pytest.fixture(scope="module")
def kube(
    cluster: testing.DevCluster, crd: str, operator_kubeconfig: Path
) -> Iterator[client.KubeClient]:
    mesh_crds.install(cluster)
    kube = client.connect(str(operator_kubeconfig))
    try:
        yield kube
    finally:
        kube.api.close()  # type: ignore[no-untyped-call]


# --- One table row per provider: how its route looks and how to read it back --------


@dataclasses.dataclass(frozen=True)
class Mesh:
    name: str  # spec.traffic.provider
    provider: Callable[[client.KubeClient], Provider]
    resource: str  # for kubectl
    field: str  # spec.traffic.<field>
    created_by: str  # the spec field that makes Pitstop create the route
    created_value: list[Any]
    user_route: Callable[[str], Object]  # namespace -> the user's route
    host: Callable[[str, str], str]  # (service, namespace) -> how Pitstop names it
    routed: Callable[[Object], list[tuple[str, int]]]  # first rule: (target, weight)
    mirrored: Callable[[Object], list[tuple[str, int]]]  # first rule: (target, percent)
    kept: Callable[[Object], Object]  # what Pitstop must leave as the user wrote it
    weights: tuple[str, str]  # JSON pointers: the first rule's stable and candidate weight


def gateway_route(namespace: str) -> Object:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": "infra"}],
            "hostnames": ["fraud.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"set": [{"name": "x-team", "value": "ml"}]},
                        }
                    ],
                    "backendRefs": [{"name": "fraud", "port": 80}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                    "backendRefs": [{"name": "other", "port": 8080}],
                },
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
            "http": [
                {
                    "name": "predict",
                    "match": [{"uri": {"prefix": "/predict"}}],
                    "retries": {"attempts": 2, "perTryTimeout": "1s"},
                    "route": [{"destination": {"host": "fraud"}}],
                },
                {"name": "other", "route": [{"destination": {"host": "other"}}]},
            ],
        },
    }


def gateway_filters(obj: Object) -> list[Object]:
    filters: list[Object] = obj["spec"]["rules"][0].get("filters", [])
    return filters


def istio_mirrored(obj: Object) -> list[tuple[str, int]]:
    http = obj["spec"]["http"][0]
    if "mirror" not in http:
        return []
    return [(http["mirror"]["host"], round(http["mirrorPercentage"]["value"]))]


GATEWAY = Mesh(
    name=GatewayApiProvider.name,
    provider=GatewayApiProvider,
    resource="httproute",
    field="httpRoute",
    created_by="parentRefs",
    created_value=[{"name": "gateway", "namespace": "infra", "sectionName": "http"}],
    user_route=gateway_route,
    host=lambda service, namespace: service,
    routed=lambda obj: [
        (ref["name"], ref["weight"]) for ref in obj["spec"]["rules"][0]["backendRefs"]
    ],
    mirrored=lambda obj: [
        (f["requestMirror"]["backendRef"]["name"], f["requestMirror"]["percent"])
        for f in gateway_filters(obj)
        if f["type"] == "RequestMirror"
    ],
    kept=lambda obj: {
        "parentRefs": obj["spec"]["parentRefs"],
        "hostnames": obj["spec"]["hostnames"],
        "matches": obj["spec"]["rules"][0]["matches"],
        "filters": [f for f in gateway_filters(obj) if f["type"] != "RequestMirror"],
        "other": obj["spec"]["rules"][1],
    },
    weights=("/spec/rules/0/backendRefs/0/weight", "/spec/rules/0/backendRefs/1/weight"),
)

ISTIO = Mesh(
    name=IstioProvider.name,
    provider=IstioProvider,
    resource="virtualservice",
    field="virtualService",
    created_by="hosts",
    created_value=["fraud.example.com"],
    user_route=istio_route,
    host=lambda service, namespace: f"{service}.{namespace}.svc.cluster.local",
    routed=lambda obj: [
        (d["destination"]["host"], d["weight"]) for d in obj["spec"]["http"][0]["route"]
    ],
    mirrored=istio_mirrored,
    kept=lambda obj: {
        "hosts": obj["spec"]["hosts"],
        "gateways": obj["spec"].get("gateways"),
        "match": obj["spec"]["http"][0].get("match"),
        "retries": obj["spec"]["http"][0].get("retries"),
        "other": obj["spec"]["http"][1],
    },
    weights=("/spec/http/0/route/0/weight", "/spec/http/0/route/1/weight"),
)

MESHES = [pytest.param(GATEWAY, id="gateway-api"), pytest.param(ISTIO, id="istio")]

# The rollout the tests walk through: (split, stable weight, candidate weight, mirror %).
STEPS = [
    (Split(S), 100, None, None),
    (Split(S, C, weight=10), 90, 10, None),
    (Split(S, C, weight=50), 50, 50, None),
    (Split(S, C, mirror=100), 100, 0, 100),
    (Split(S), 100, None, None),
]


# --- helpers ----------------------------------------------------------------------------


def model_deployment(
    cluster: testing.DevCluster, namespace: str, mesh: Mesh, traffic: Object
) -> ModelDeployment:
    """A real ModelDeployment (for its uid); no operator runs in these tests."""
    obj = {
        "apiVersion": "pitstop.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "model": {"name": "fraud", "version": "1"},
            "image": "registry.example.com/ml/fraud:1",
            "traffic": {"provider": mesh.name, mesh.field: traffic},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))
    return ModelDeployment.from_object(get(cluster, namespace, "modeldeployment", "fraud"))


def get(cluster: testing.DevCluster, namespace: str, resource: str, name: str) -> Object:
    done = cluster.kubectl(
        "get", resource, name, "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    obj: Object = json.loads(done.stdout)
    return obj


def create_user_route(cluster: testing.DevCluster, namespace: str, mesh: Mesh) -> Object:
    route = mesh.user_route(namespace)
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=user", "-f", "-", input=json.dumps(route)
    )
    return get(cluster, namespace, mesh.resource, "fraud")


def expected(
    mesh: Mesh, namespace: str, stable: int, candidate: int | None, mirror: int | None
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    routed = [(mesh.host(f"fraud-{S}", namespace), stable)]
    if candidate is not None:
        routed.append((mesh.host(f"fraud-{C}", namespace), candidate))
    mirrored = [(mesh.host(f"fraud-{C}", namespace), mirror)] if mirror is not None else []
    return routed, mirrored


# --- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", MESHES)
def test_weights_and_mirror_on_a_users_route_leave_the_rest_alone(
    cluster: testing.DevCluster, namespace: str, kube: client.KubeClient, mesh: Mesh
) -> None:
    before = create_user_route(cluster, namespace, mesh)
    md = model_deployment(cluster, namespace, mesh, {"name": "fraud"})
    provider = mesh.provider(kube)
    assert provider.problem(md) is None

    for split, stable, candidate, mirror in STEPS:
        provider.apply(md, split)
        held = get(cluster, namespace, mesh.resource, "fraud")
        routed, mirrored = expected(mesh, namespace, stable, candidate, mirror)
        assert (mesh.routed(held), mesh.mirrored(held)) == (routed, mirrored), split
        assert mesh.kept(held) == mesh.kept(before), split
        verification = provider.verify(md, split)
        assert (verification.ok, verification.message) == (True, ""), split
        assert verification.weight == split.weight

    # Pitstop manages only the rules list; the rest stays the user's.
    managers = {
        entry["manager"]: json.dumps(entry["fieldsV1"])
        for entry in held["metadata"]["managedFields"]
    }
    rules = '"f:rules"' if mesh is GATEWAY else '"f:http"'
    assert rules in managers["pitstop"]
    assert '"f:hostnames"' not in managers["pitstop"]
    assert '"f:hosts"' not in managers["pitstop"]


@pytest.mark.parametrize("mesh", MESHES)
def test_verify_detects_a_route_edited_behind_pitstops_back(
    cluster: testing.DevCluster, namespace: str, kube: client.KubeClient, mesh: Mesh
) -> None:
    create_user_route(cluster, namespace, mesh)
    md = model_deployment(cluster, namespace, mesh, {"name": "fraud"})
    provider = mesh.provider(kube)
    split = Split(S, C, weight=50)
    provider.apply(md, split)
    assert provider.verify(md, split).ok

    stable_weight, candidate_weight = mesh.weights
    patch = [
        {"op": "replace", "path": stable_weight, "value": 100},
        {"op": "replace", "path": candidate_weight, "value": 0},
    ]
    cluster.kubectl(
        "patch", mesh.resource, "fraud", "-n", namespace, "--type=json", "-p", json.dumps(patch)
    )
    drifted = provider.verify(md, split)
    assert not drifted.ok
    assert drifted.weight == 0  # what users really get now
    assert f"fraud-{S}=100, fraud-{C}=0, want fraud-{S}=50, fraud-{C}=50" in drifted.message
    assert f"{namespace}/fraud" in drifted.message

    provider.apply(md, split)  # level-based: the next reconcile puts it back
    assert provider.verify(md, split).ok


@pytest.mark.parametrize("mesh", MESHES)
def test_a_route_pitstop_creates_is_owned_and_garbage_collected(
    cluster: testing.DevCluster, namespace: str, kube: client.KubeClient, mesh: Mesh
) -> None:
    md = model_deployment(
        cluster, namespace, mesh, {"name": "fraud", mesh.created_by: mesh.created_value}
    )
    provider = mesh.provider(kube)
    assert provider.problem(md) is None  # a route still to be created is no problem

    for split, stable, candidate, mirror in STEPS:
        provider.apply(md, split)
        held = get(cluster, namespace, mesh.resource, "fraud")
        assert (mesh.routed(held), mesh.mirrored(held)) == expected(
            mesh, namespace, stable, candidate, mirror
        ), split
        assert provider.verify(md, split).ok, split
    # The API server defaults parentRefs' group and kind.
    for held_value, value in zip(held["spec"][mesh.created_by], mesh.created_value, strict=True):
        assert held_value == value or held_value.items() >= value.items()
    [owner] = held["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("ModelDeployment", md.metadata.uid)
    assert held["metadata"]["labels"]["pitstop.dev/model-deployment"] == "fraud"

    cluster.kubectl("delete", "modeldeployment", "fraud", "-n", namespace, "--wait=false")
    cluster.wait(
        f"{mesh.resource} garbage-collected",
        lambda: cluster.kubectl(
            "get", mesh.resource, "fraud", "-n", namespace, "--ignore-not-found", "-o", "name"
        ).stdout.strip() == "",
        timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("mesh", MESHES)
def test_problem_names_what_is_wrong_with_the_route(
    cluster: testing.DevCluster, namespace: str, kube: client.KubeClient, mesh: Mesh
) -> None:
    provider = mesh.provider(kube)
    kind = mesh.user_route(namespace)["kind"]

    md = model_deployment(cluster, namespace, mesh, {"name": "fraud"})
    problem = provider.problem(md)
    assert problem is not None
    assert problem.startswith(f"{kind} {namespace}/fraud (spec.traffic.{mesh.field}.name) "
                              "does not exist")  # fmt: skip

    route = mesh.user_route(namespace)
    if mesh is GATEWAY:
        route["spec"]["rules"] = route["spec"]["rules"][1:]
    else:
        route["spec"]["http"] = route["spec"]["http"][1:]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(route))
    problem = provider.problem(md)
    assert problem is not None
    assert "Services of fraud" in problem
    assert "nothing to weight" in problem

    # The route exists but the spec asks Pitstop to create (and own) one of that name.
    md = model_deployment(
        cluster, namespace, mesh, {"name": "fraud", mesh.created_by: mesh.created_value}
    )
    problem = provider.problem(md)
    assert problem is not None
    assert problem.startswith(f"{kind} {namespace}/fraud exists and is not Pitstop's")
