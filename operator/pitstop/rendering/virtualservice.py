"""Istio VirtualService http routes for a traffic split, and their comparison.

An http route is *managed* when its `route` sends only to this ModelDeployment's
Services (entry `<name>` or a revision's `<name>-<revision>`, by short name or
FQDN): Pitstop rewrites its `route` (destinations by FQDN, port 80, weights) and its
`mirror` / `mirrorPercentage`; matches, retries, timeouts, headers and a user's
`mirrors` list are kept as read, as are http routes that send elsewhere. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from pitstop.api.resource import ModelDeployment
from pitstop.rendering import children, labels, routing

Object = dict[str, Any]

API_VERSION = "networking.istio.io/v1"
KIND = "VirtualService"
# Fields of an http route that Pitstop rewrites (mirrorPercent is their deprecated form).
_MIRROR_FIELDS = ("mirror", "mirrorPercentage", "mirrorPercent", "mirror_percent")


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def own_service(deployment: str, namespace: str, host: str) -> str | None:
    """The Service a destination host names, when it is one of ours; else None."""
    service, _, rest = host.partition(".")
    if rest not in ("", namespace, f"{namespace}.svc", f"{namespace}.svc.cluster.local"):
        return None
    return service if routing.is_own_service(deployment, service) else None


def is_managed(deployment: str, namespace: str, http: Object) -> bool:
    """Whether Pitstop weights this http route: it has destinations, all of them ours."""
    route = http.get("route") or []
    return bool(route) and all(
        own_service(deployment, namespace, str(dest.get("destination", {}).get("host", "")))
        for dest in route
    )


def route(deployment: str, namespace: str, split: routing.Split) -> list[Object]:
    """Weighted destinations: stable then candidate; a missing candidate has no entry."""
    return [
        {
            "destination": {
                "host": fqdn(name, namespace),
                "port": {"number": labels.SERVICE_PORT},
            },
            "weight": weight,
        }
        for name, weight in routing.weights(deployment, split)
    ]


def mirror(deployment: str, namespace: str, split: routing.Split) -> Object:
    """The `mirror` and `mirrorPercentage` fields of a managed route (empty: none)."""
    target = routing.mirror_target(deployment, split)
    if target is None:
        return {}
    name, percent = target
    return {
        "mirror": {"host": fqdn(name, namespace), "port": {"number": labels.SERVICE_PORT}},
        "mirrorPercentage": {"value": float(percent)},
    }


def rewrite(
    deployment: str, namespace: str, http: list[Object], split: routing.Split
) -> list[Object]:
    """`http` with every managed route sent as `split` says; other routes untouched."""
    rewritten: list[Object] = []
    for rule in http:
        if not is_managed(deployment, namespace, rule):
            rewritten.append(rule)
            continue
        kept = {k: v for k, v in rule.items() if k not in _MIRROR_FIELDS}
        rewritten.append(
            {
                **kept,
                "route": route(deployment, namespace, split),
                **mirror(deployment, namespace, split),
            }
        )
    return rewritten


def owned_virtual_service(
    md: ModelDeployment,
    name: str,
    hosts: list[str],
    gateways: list[str] | None,
    split: routing.Split,
) -> Object:
    """The whole VirtualService Pitstop creates and owns: one http route for every path."""
    deployment, namespace = md.metadata.name, md.metadata.namespace
    http: Object = {
        "name": "pitstop",
        "route": route(deployment, namespace, split),
        **mirror(deployment, namespace, split),
    }
    spec: Object = {"hosts": hosts, "http": [http]}
    if gateways:
        spec["gateways"] = gateways
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels.base(deployment), labels.ROLE: "route"},
            "ownerReferences": [children.owner_reference(md)],
        },
        "spec": spec,
    }


def http_apply(name: str, namespace: str, http: list[Object]) -> Object:
    """An apply body naming only `spec.http` of a user's VirtualService.

    `spec.http` is a list without merge keys in Istio's schema (atomic for server-side
    apply), so Pitstop applies the list it read with only its fields rewritten and
    becomes the manager of `spec.http`; hosts, gateways and the rest stay the user's.
    """
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"http": http},
    }


def _weighted(deployment: str, namespace: str, route_: list[Object]) -> list[tuple[str, int]]:
    entries: list[tuple[str, int]] = []
    for dest in route_:
        host = str(dest.get("destination", {}).get("host", ""))
        # Istio: a lone destination takes all traffic whatever its weight says.
        weight = 100 if len(route_) == 1 else int(dest.get("weight", 0))
        entries.append((own_service(deployment, namespace, host) or host, weight))
    return entries


def _mirrors(deployment: str, namespace: str, rule: Object) -> list[tuple[str, int]]:
    target = rule.get("mirror")
    if not target:
        return []
    host = str(target.get("host", ""))
    if "mirrorPercentage" in rule:
        percent = round(float(rule["mirrorPercentage"].get("value", 0)))
    else:
        percent = int(rule.get("mirrorPercent", 100))
    return [(own_service(deployment, namespace, host) or host, percent)]


def _ports(rule: Object) -> set[int | None]:
    dests = [d.get("destination", {}) for d in rule.get("route") or []]
    if rule.get("mirror"):
        dests.append(rule["mirror"])
    return {(d.get("port") or {}).get("number") for d in dests}


def compare(
    deployment: str, namespace: str, http: list[Object], split: routing.Split
) -> routing.Comparison:
    """How the managed http routes of `http` differ from what `split` wants."""
    managed = [(i, r) for i, r in enumerate(http) if is_managed(deployment, namespace, r)]
    if not managed:
        return routing.Comparison(
            (f"no http route sends to the Services of {deployment} (destination host "
             f"{deployment} or {deployment}-<revision>)",),
            None,
        )  # fmt: skip
    want_route = routing.weights(deployment, split)
    target = routing.mirror_target(deployment, split)
    want_mirrors = [target] if target is not None else []
    differences: list[str] = []
    for i, rule in managed:
        got_route = _weighted(deployment, namespace, rule["route"])
        if got_route != want_route:
            differences.append(
                f"http route {i} sends to {routing.describe(got_route)}, "
                f"want {routing.describe(want_route)}"
            )
        ports = _ports(rule)
        if ports != {labels.SERVICE_PORT}:
            differences.append(
                f"http route {i} uses ports {sorted(ports, key=str)}, want {labels.SERVICE_PORT}"
            )
        got_mirrors = _mirrors(deployment, namespace, rule)
        if got_mirrors != want_mirrors:
            differences.append(
                f"http route {i} mirrors to {routing.describe(got_mirrors)}, "
                f"want {routing.describe(want_mirrors)}"
            )
    weight = routing.share_off_stable(
        deployment, split, _weighted(deployment, namespace, managed[0][1]["route"])
    )
    return routing.Comparison(tuple(differences), weight)
