"""A user's Gateway API HTTPRoute for the ModelDeployment `fraud`, and what it routes.

The tests that need exact weights (a flip-flop must be visible as a number) route
through it; the CRDs are the real ones (see mesh_crds and the `gateway_api` fixture).
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]
TRAFFIC = {"provider": "gateway-api", "httpRoute": {"name": "fraud"}}  # spec.traffic


def user_route(namespace: str) -> Object:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": "infra"}],
            "rules": [{"backendRefs": [{"name": "fraud", "port": 80}]}],
        },
    }


def weights(route: Object) -> list[tuple[str, int]]:
    """(Service, weight) of the route's rule, in order."""
    refs = route["spec"]["rules"][0]["backendRefs"]
    return [(ref["name"], ref.get("weight", 1)) for ref in refs]
