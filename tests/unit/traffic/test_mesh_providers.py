"""What the gateway-api and istio providers say before they route: `problem()`.

The cluster is played by a stub KubeClient that holds a few objects or serves no mesh
CRD at all; the same cases run against the real API server in
tests/integration/test_traffic_providers.py (all but the missing CRD, which a shared
control plane with the CRDs installed cannot show).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from pitstop.api.resource import ModelDeployment
from pitstop.k8s.client import KubeClient
from pitstop.traffic.gateway_api import GatewayApiProvider
from pitstop.traffic.istio import IstioProvider

Object = dict[str, Any]


class StubKube(KubeClient):
    """Holds objects by (kind, name); `served=False` plays a cluster without the CRD."""

    def __init__(self, objects: dict[tuple[str, str], Object], served: bool = True) -> None:
        self.objects = objects
        self.served = served

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        if not self.served:
            raise ResourceNotFoundError(f"No matches found for {kind}")
        return self.objects.get((kind, name))


def md(traffic: Object) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {"metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1"},
         "spec": {"model": {"name": "fraud", "version": "7"}, "image": "r.example/f:7",
                  "traffic": traffic}}
    )  # fmt: skip


def gateway(**route: Any) -> Object:
    return {"provider": "gateway-api", "httpRoute": {"name": "fraud", **route}}


def istio(**vs: Any) -> Object:
    return {"provider": "istio", "virtualService": {"name": "fraud", **vs}}


ROUTE_TO_ENTRY = {"metadata": {}, "spec": {"rules": [{"backendRefs": [{"name": "fraud", "port": 80}]}]}}  # fmt: skip
ROUTE_ELSEWHERE = {"metadata": {}, "spec": {"rules": [{"backendRefs": [{"name": "x", "port": 80}]}]}}  # fmt: skip
VS_TO_ENTRY = {"metadata": {}, "spec": {"http": [{"route": [{"destination": {"host": "fraud"}}]}]}}  # fmt: skip
VS_ELSEWHERE = {"metadata": {}, "spec": {"http": [{"route": [{"destination": {"host": "x"}}]}]}}  # fmt: skip
OURS = {"metadata": {"ownerReferences": [{"uid": "u-1"}]}, "spec": {}}
THEIRS = {"metadata": {"ownerReferences": [{"uid": "someone-else"}]}, "spec": {}}
GW = [{"name": "gw"}]


@pytest.mark.parametrize(
    ("make", "traffic", "objects", "served", "problem"),
    [
        (GatewayApiProvider, gateway(), {("HTTPRoute", "fraud"): ROUTE_TO_ENTRY}, True, None),
        (GatewayApiProvider, gateway(), {}, True,
         "HTTPRoute ml/fraud (spec.traffic.httpRoute.name) does not exist: create it with a "
         "rule whose backendRefs name the Service fraud on port 80, or set "
         "spec.traffic.httpRoute.parentRefs for Pitstop to create it"),
        (GatewayApiProvider, gateway(), {("HTTPRoute", "fraud"): ROUTE_ELSEWHERE}, True,
         "HTTPRoute ml/fraud has no rule whose backendRefs name only the Services of fraud "
         "(fraud or fraud-<revision>), so Pitstop has nothing to weight"),
        (GatewayApiProvider, gateway(), {}, False,
         "the cluster does not serve HTTPRoute (gateway.networking.k8s.io/v1): install the "
         "Gateway API CRDs, or choose another spec.traffic.provider"),
        (GatewayApiProvider, gateway(parentRefs=GW), {}, True, None),
        (GatewayApiProvider, gateway(parentRefs=GW), {("HTTPRoute", "fraud"): OURS}, True, None),
        (GatewayApiProvider, gateway(parentRefs=GW), {("HTTPRoute", "fraud"): THEIRS}, True,
         "HTTPRoute ml/fraud exists and is not Pitstop's: remove "
         "spec.traffic.httpRoute.parentRefs to let Pitstop weight its backendRefs, or name "
         "another route"),
        (IstioProvider, istio(), {("VirtualService", "fraud"): VS_TO_ENTRY}, True, None),
        (IstioProvider, istio(), {}, True,
         "VirtualService ml/fraud (spec.traffic.virtualService.name) does not exist: create it "
         "with an http route to the host fraud, or set spec.traffic.virtualService.hosts for "
         "Pitstop to create it"),
        (IstioProvider, istio(), {("VirtualService", "fraud"): VS_ELSEWHERE}, True,
         "VirtualService ml/fraud has no http route whose destinations are only the Services "
         "of fraud (fraud or fraud-<revision>), so Pitstop has nothing to weight"),
        (IstioProvider, istio(), {}, False,
         "the cluster does not serve VirtualService (networking.istio.io/v1): install Istio's "
         "CRDs, or choose another spec.traffic.provider"),
        (IstioProvider, istio(hosts=["fraud.example.com"]), {}, True, None),
        (IstioProvider, istio(hosts=["fraud.example.com"]), {("VirtualService", "fraud"): THEIRS},
         True,
         "VirtualService ml/fraud exists and is not Pitstop's: remove "
         "spec.traffic.virtualService.hosts to let Pitstop weight its routes, or name another "
         "VirtualService"),
    ],
)  # fmt: skip
def test_problem(
    make: type[GatewayApiProvider] | type[IstioProvider],
    traffic: Object,
    objects: dict[tuple[str, str], Object],
    served: bool,
    problem: str | None,
) -> None:
    assert make(StubKube(objects, served)).problem(md(traffic)) == problem
