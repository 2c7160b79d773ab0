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

Before a shadow mirrors through the route, the Gateway's implementation must say it can
(`unsupported`): its GatewayClass's `status.supportedFeatures`. One that lists its
features without HTTPRouteRequestMirror holds the new rollout with the reason, instead
of being handed a filter it may answer with errors for every user request.

The rules themselves are rendered and compared by the pure `rendering.httproute`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import HttpRouteRef
from pitstop.k8s.client import KubeClient
from pitstop.rendering import httproute
from pitstop.traffic import provider

Object = dict[str, Any]

GROUP = "gateway.networking.k8s.io"
GATEWAY = (f"{GROUP}/v1", "Gateway")
GATEWAY_CLASS = (f"{GROUP}/v1", "GatewayClass")


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

    def unsupported(self, md: ModelDeployment, needs: frozenset[str]) -> str | None:
        """Why the route's Gateways cannot mirror a shadow's copies, or None (also when
        their implementation does not say, or Pitstop may not read it)."""
        shadow = md.spec.strategy.shadow
        if provider.MIRROR not in needs or shadow is None:
            return None
        ref = _ref(md)
        if ref.parent_refs is not None:
            parents = [p.model_dump(by_alias=True, exclude_none=True) for p in ref.parent_refs]
        else:
            parents = ((self._read(md, ref) or {}).get("spec") or {}).get("parentRefs") or []
        for parent in parents:
            if (parent.get("group") or GROUP) != GROUP or (
                parent.get("kind") or "Gateway"
            ) != "Gateway":
                continue
            namespace = parent.get("namespace") or md.metadata.namespace
            gateway = self._read_quietly(*GATEWAY, namespace, str(parent.get("name")))
            class_name = str(((gateway or {}).get("spec") or {}).get("gatewayClassName") or "")
            gateway_class = (
                self._read_quietly(*GATEWAY_CLASS, "", class_name) if class_name else None
            )
            if gateway_class is None:
                continue
            supported = (gateway_class.get("status") or {}).get("supportedFeatures")
            missing = httproute.missing_mirror_features(supported, shadow.percent)
            if missing:
                return (
                    f"GatewayClass {class_name} (of Gateway {namespace}/{parent.get('name')}) "
                    f"does not list {' or '.join(missing)} in status.supportedFeatures, so "
                    "its implementation cannot mirror a shadow's copies; use strategy Canary "
                    "or BlueGreen on this route, or spec.traffic.provider service"
                )
        return None

    def _read_quietly(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Object | None:
        """The object, or None when it does not exist, its kind is not served, or
        Pitstop may not read it (a Gateway in a namespace it does not watch)."""
        try:
            return self._kube.get(api_version, kind, namespace, name)
        except ResourceNotFoundError:
            return None
        except ApiException as error:
            if error.status == 403:
                return None
            raise

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
