"""The gateway-api traffic provider: weights and mirroring on a Gateway API HTTPRoute.

Two modes, chosen by `spec.traffic.httpRoute`:

- **referenced** (only `name`): the HTTPRoute is the user's and must exist. Pitstop
  rewrites, in the rules whose backendRefs all name this ModelDeployment's Services
  (start with `backendRefs: [{name: <md>, port: 80}]`), only the `backendRefs` and the
  RequestMirror filter that targets its candidate; matches, other filters and other
  rules stay as read. Because `spec.rules` is an atomic list in the Gateway API schema,
  the apply carries the whole list and Pitstop's field manager becomes the manager of
  `spec.rules` (parentRefs, hostnames and labels stay the user's). A GitOps tool that
  also manages the route should ignore differences under `/spec/rules` — or let
  Pitstop create the route instead.
- **created** (`parentRefs` given): Pitstop creates and owns the whole HTTPRoute
  (owner reference to the ModelDeployment, `pitstop.dev/*` labels), so it is garbage-
  collected with it. An HTTPRoute of that name that Pitstop does not own is refused.

The rules themselves are rendered and compared by the pure `rendering.httproute`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import HttpRouteRef
from pitstop.k8s.client import KubeClient
from pitstop.rendering import httproute
from pitstop.traffic import provider

Object = dict[str, Any]


class GatewayApiProvider:
    name: ClassVar[str] = "gateway-api"
    capabilities: ClassVar[frozenset[str]] = frozenset({provider.WEIGHTS, provider.MIRROR})

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    def problem(self, md: ModelDeployment) -> str | None:
        ref = md.spec.traffic.http_route
        if ref is None:
            return "spec.traffic.httpRoute is required with provider gateway-api"
        where = _where(md, ref)
        try:
            route = self._read(md, ref)
        except ResourceNotFoundError:
            return (
                f"the cluster does not serve {httproute.KIND} ({httproute.API_VERSION}): "
                "install the Gateway API CRDs, or choose another spec.traffic.provider"
            )
        if ref.parent_refs is not None:
            if route is not None and not _owned_by(md, route):
                return (
                    f"{where} exists and is not Pitstop's: remove "
                    "spec.traffic.httpRoute.parentRefs to let Pitstop weight its "
                    "backendRefs, or name another route"
                )
            return None
        if route is None:
            return (
                f"{where} (spec.traffic.httpRoute.name) does not exist: create it with a "
                f"rule whose backendRefs name the Service {md.metadata.name} on port 80, or "
                "set spec.traffic.httpRoute.parentRefs for Pitstop to create it"
            )
        rules = route.get("spec", {}).get("rules") or []
        if not any(httproute.is_managed(md.metadata.name, md.metadata.namespace, r) for r in rules):
            return (
                f"{where} has no rule whose backendRefs name only the Services of "
                f"{md.metadata.name} ({md.metadata.name} or {md.metadata.name}-<revision>), "
                "so Pitstop has nothing to weight"
            )
        return None

    def apply(self, md: ModelDeployment, split: provider.Split) -> None:
        ref = _ref(md)
        if ref.parent_refs is not None:
            parents = [p.model_dump(by_alias=True, exclude_none=True) for p in ref.parent_refs]
            hostnames = list(ref.hostnames) if ref.hostnames else None
            self._kube.apply(httproute.owned_route(md, ref.name, parents, hostnames, split))
            return
        route = self._read(md, ref)
        if route is None:
            raise LookupError(f"{_where(md, ref)} does not exist")
        rules = httproute.rewrite(
            md.metadata.name, md.metadata.namespace, route["spec"].get("rules") or [], split
        )
        # The resourceVersion read makes the apply conditional: a concurrent edit of
        # the route fails it (409) instead of being overwritten with what was read.
        body = httproute.rules_apply(ref.name, md.metadata.namespace, rules)
        body["metadata"]["resourceVersion"] = route["metadata"]["resourceVersion"]
        self._kube.apply(body)

    def verify(self, md: ModelDeployment, split: provider.Split) -> provider.Verification:
        ref = _ref(md)
        route = self._read(md, ref)
        if route is None:
            return provider.Verification(False, f"{_where(md, ref)} does not exist")
        rules = route.get("spec", {}).get("rules") or []
        result = httproute.compare(md.metadata.name, md.metadata.namespace, rules, split)
        if result.differences:
            message = f"{_where(md, ref)}: " + "; ".join(result.differences)
            return provider.Verification(False, message, result.weight)
        return provider.Verification(True, "", result.weight)

    def _read(self, md: ModelDeployment, ref: HttpRouteRef) -> Object | None:
        return self._kube.get(
            httproute.API_VERSION, httproute.KIND, md.metadata.namespace, ref.name
        )


def _ref(md: ModelDeployment) -> HttpRouteRef:
    ref = md.spec.traffic.http_route
    if ref is None:  # the CRD requires it with this provider; problem() says so too
        raise ValueError("spec.traffic.httpRoute is required with provider gateway-api")
    return ref


def _where(md: ModelDeployment, ref: HttpRouteRef) -> str:
    return f"{httproute.KIND} {md.metadata.namespace}/{ref.name}"


def _owned_by(md: ModelDeployment, obj: Object) -> bool:
    owners = obj.get("metadata", {}).get("ownerReferences") or []
    return any(owner.get("uid") == md.metadata.uid for owner in owners)
