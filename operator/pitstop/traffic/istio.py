"""The istio traffic provider: weights and mirroring on an Istio VirtualService.

Two modes, chosen by `spec.traffic.virtualService`:

- **referenced** (only `name`): the VirtualService is the user's and must exist.
  Pitstop rewrites, in the http routes whose destinations all name this
  ModelDeployment's Services (start with `route: [{destination: {host: <md>}}]`), only
  `route` (destinations by FQDN `<md>-<revision>.<ns>.svc.cluster.local`, port 80,
  weights) and `mirror` / `mirrorPercentage`; matches, retries, a `mirrors` list and
  other http routes stay as read. `spec.http` has no merge keys in Istio's schema, so
  the apply carries the whole list and Pitstop's field manager becomes the manager of
  `spec.http` (hosts, gateways and the rest stay the user's). A GitOps tool that also
  manages the VirtualService should ignore differences under `/spec/http` — or let
  Pitstop create it instead.
- **created** (`hosts` given, optionally `gateways`): Pitstop creates and owns the
  whole VirtualService (owner reference, `pitstop.dev/*` labels). A VirtualService of
  that name that Pitstop does not own is refused.

The routes themselves are rendered and compared by the pure `rendering.virtualservice`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kubernetes.dynamic.exceptions import ResourceNotFoundError

from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import VirtualServiceRef
from pitstop.k8s.client import KubeClient
from pitstop.rendering import virtualservice
from pitstop.traffic import provider

Object = dict[str, Any]


class IstioProvider:
    name: ClassVar[str] = "istio"
    capabilities: ClassVar[frozenset[str]] = frozenset({provider.WEIGHTS, provider.MIRROR})

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    def unsupported(self, md: ModelDeployment, needs: frozenset[str]) -> str | None:
        return None  # every Istio data plane (Envoy) weights and mirrors

    def problem(self, md: ModelDeployment) -> str | None:
        ref = md.spec.traffic.virtual_service
        if ref is None:
            return "spec.traffic.virtualService is required with provider istio"
        where = _where(md, ref)
        try:
            found = self._read(md, ref)
        except ResourceNotFoundError:
            return (
                f"the cluster does not serve {virtualservice.KIND} "
                f"({virtualservice.API_VERSION}): install Istio's CRDs, or choose another "
                "spec.traffic.provider"
            )
        if ref.hosts is not None:
            if found is not None and not _owned_by(md, found):
                return (
                    f"{where} exists and is not Pitstop's: remove "
                    "spec.traffic.virtualService.hosts to let Pitstop weight its routes, "
                    "or name another VirtualService"
                )
            return None
        if found is None:
            return (
                f"{where} (spec.traffic.virtualService.name) does not exist: create it with "
                f"an http route to the host {md.metadata.name}, or set "
                "spec.traffic.virtualService.hosts for Pitstop to create it"
            )
        http = found.get("spec", {}).get("http") or []
        name, namespace = md.metadata.name, md.metadata.namespace
        if not any(virtualservice.is_managed(name, namespace, rule) for rule in http):
            return (
                f"{where} has no http route whose destinations are only the Services of "
                f"{name} ({name} or {name}-<revision>), so Pitstop has nothing to weight"
            )
        return None

    def apply(self, md: ModelDeployment, split: provider.Split) -> None:
        ref = _ref(md)
        if ref.hosts is not None:
            gateways = list(ref.gateways) if ref.gateways else None
            obj = virtualservice.owned_virtual_service(
                md, ref.name, list(ref.hosts), gateways, split
            )
            self._kube.apply(obj)
            return
        found = self._read(md, ref)
        if found is None:
            raise LookupError(f"{_where(md, ref)} does not exist")
        http = virtualservice.rewrite(
            md.metadata.name, md.metadata.namespace, found["spec"].get("http") or [], split
        )
        # The resourceVersion read makes the apply conditional: a concurrent edit
        # fails it (409) instead of being overwritten with what was read.
        body = virtualservice.http_apply(ref.name, md.metadata.namespace, http)
        body["metadata"]["resourceVersion"] = found["metadata"]["resourceVersion"]
        self._kube.apply(body)

    def verify(self, md: ModelDeployment, split: provider.Split) -> provider.Verification:
        ref = _ref(md)
        found = self._read(md, ref)
        if found is None:
            return provider.Verification(False, f"{_where(md, ref)} does not exist")
        http = found.get("spec", {}).get("http") or []
        result = virtualservice.compare(md.metadata.name, md.metadata.namespace, http, split)
        if result.differences:
            message = f"{_where(md, ref)}: " + "; ".join(result.differences)
            return provider.Verification(False, message, result.weight)
        return provider.Verification(True, "", result.weight)

    def _read(self, md: ModelDeployment, ref: VirtualServiceRef) -> Object | None:
        return self._kube.get(
            virtualservice.API_VERSION, virtualservice.KIND, md.metadata.namespace, ref.name
        )


def _ref(md: ModelDeployment) -> VirtualServiceRef:
    ref = md.spec.traffic.virtual_service
    if ref is None:  # the CRD requires it with this provider; problem() says so too
        raise ValueError("spec.traffic.virtualService is required with provider istio")
    return ref


def _where(md: ModelDeployment, ref: VirtualServiceRef) -> str:
    return f"{virtualservice.KIND} {md.metadata.namespace}/{ref.name}"


def _owned_by(md: ModelDeployment, obj: Object) -> bool:
    owners = obj.get("metadata", {}).get("ownerReferences") or []
    return any(owner.get("uid") == md.metadata.uid for owner in owners)
