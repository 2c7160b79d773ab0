"""Gateway API HTTPRoute rules for a traffic split, and their comparison with the cluster.

A rule is *managed* when it routes only to this ModelDeployment's Services (its entry
Service `<name>` or a revision's `<name>-<revision>`): a user's route starts out
pointing at the entry Service, and Pitstop then rewrites the `backendRefs` of exactly
those rules, plus the RequestMirror filters that target its own Services. Every other
rule, and every other field of a managed rule (matches, other filters, timeouts), is
kept as read. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from pitstop.api.resource import ModelDeployment
from pitstop.rendering import children, labels, routing

Object = dict[str, Any]

API_VERSION = "gateway.networking.k8s.io/v1"
KIND = "HTTPRoute"
MIRROR_FILTER = "RequestMirror"


def _is_own_ref(deployment: str, namespace: str, ref: Object) -> bool:
    return (
        ref.get("group", "") == ""
        and ref.get("kind", "Service") == "Service"
        and ref.get("namespace", namespace) == namespace
        and routing.is_own_service(deployment, str(ref.get("name", "")))
    )


def is_managed(deployment: str, namespace: str, rule: Object) -> bool:
    """Whether Pitstop weights this rule: it has backends and all of them are ours."""
    refs = rule.get("backendRefs") or []
    return bool(refs) and all(_is_own_ref(deployment, namespace, ref) for ref in refs)


def _is_own_mirror(deployment: str, namespace: str, filter_: Object) -> bool:
    if filter_.get("type") != MIRROR_FILTER:
        return False
    ref = (filter_.get("requestMirror") or {}).get("backendRef") or {}
    return _is_own_ref(deployment, namespace, ref)


def backend_refs(deployment: str, split: routing.Split) -> list[Object]:
    """Stable then candidate Service, weighted; a missing candidate has no entry."""
    return [
        {"name": name, "port": labels.SERVICE_PORT, "weight": weight}
        for name, weight in routing.weights(deployment, split)
    ]


def mirror_filter(deployment: str, split: routing.Split) -> Object | None:
    """The RequestMirror filter copying `split.mirror` percent to the candidate, if any."""
    target = routing.mirror_target(deployment, split)
    if target is None:
        return None
    name, percent = target
    return {
        "type": MIRROR_FILTER,
        "requestMirror": {
            "backendRef": {"name": name, "port": labels.SERVICE_PORT},
            "percent": percent,
        },
    }


def rewrite(
    deployment: str, namespace: str, rules: list[Object], split: routing.Split
) -> list[Object]:
    """`rules` with every managed rule routed as `split` says; other rules untouched."""
    rewritten: list[Object] = []
    for rule in rules:
        if not is_managed(deployment, namespace, rule):
            rewritten.append(rule)
            continue
        new = {**rule, "backendRefs": backend_refs(deployment, split)}
        filters = [
            f for f in rule.get("filters") or [] if not _is_own_mirror(deployment, namespace, f)
        ]
        mirror = mirror_filter(deployment, split)
        if mirror is not None:
            filters.append(mirror)
        if filters:
            new["filters"] = filters
        else:
            new.pop("filters", None)
        rewritten.append(new)
    return rewritten


def owned_route(
    md: ModelDeployment,
    name: str,
    parent_refs: list[Object],
    hostnames: list[str] | None,
    split: routing.Split,
) -> Object:
    """The whole HTTPRoute Pitstop creates and owns: one rule for every path."""
    rule: Object = {"backendRefs": backend_refs(md.metadata.name, split)}
    mirror = mirror_filter(md.metadata.name, split)
    if mirror is not None:
        rule["filters"] = [mirror]
    spec: Object = {"parentRefs": parent_refs, "rules": [rule]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": md.metadata.namespace,
            "labels": {**labels.base(md.metadata.name), labels.ROLE: "route"},
            "ownerReferences": [children.owner_reference(md)],
        },
        "spec": spec,
    }


def rules_apply(name: str, namespace: str, rules: list[Object]) -> Object:
    """An apply body naming only `spec.rules` of a user's route.

    `spec.rules` is an atomic list in the Gateway API schema, so server-side apply
    cannot share it field by field: Pitstop applies the list it read with only its
    fields rewritten, and so becomes the manager of `spec.rules` (parentRefs,
    hostnames and the rest stay the user's).
    """
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": rules},
    }


def _weighted(refs: list[Object]) -> list[tuple[str, int]]:
    # The API server defaults an absent weight to 1.
    return [(str(ref.get("name")), int(ref.get("weight", 1))) for ref in refs]


def _mirror_percent(mirror: Object) -> int:
    if "percent" in mirror:
        return int(mirror["percent"])
    fraction = mirror.get("fraction")
    if fraction:
        return round(100 * int(fraction["numerator"]) / int(fraction.get("denominator", 100)))
    return 100


def _mirrors(deployment: str, namespace: str, rule: Object) -> list[tuple[str, int]]:
    return [
        (str(f["requestMirror"]["backendRef"]["name"]), _mirror_percent(f["requestMirror"]))
        for f in rule.get("filters") or []
        if _is_own_mirror(deployment, namespace, f)
    ]


def compare(
    deployment: str, namespace: str, rules: list[Object], split: routing.Split
) -> routing.Comparison:
    """How the managed rules of `rules` differ from what `split` wants."""
    managed = [(i, r) for i, r in enumerate(rules) if is_managed(deployment, namespace, r)]
    if not managed:
        return routing.Comparison(
            (f"no rule routes to the Services of {deployment} (backendRefs to {deployment} "
             f"or {deployment}-<revision>)",),
            None,
        )  # fmt: skip
    want_refs = routing.weights(deployment, split)
    target = routing.mirror_target(deployment, split)
    want_mirrors = [target] if target is not None else []
    differences: list[str] = []
    for i, rule in managed:
        refs = rule.get("backendRefs") or []
        got_refs = _weighted(refs)
        if got_refs != want_refs:
            differences.append(
                f"rule {i} sends to {routing.describe(got_refs)}, "
                f"want {routing.describe(want_refs)}"
            )
        ports = {ref.get("port") for ref in refs}
        if ports != {labels.SERVICE_PORT}:
            differences.append(
                f"rule {i} uses ports {sorted(ports, key=str)}, want {labels.SERVICE_PORT}"
            )
        got_mirrors = _mirrors(deployment, namespace, rule)
        if got_mirrors != want_mirrors:
            differences.append(
                f"rule {i} mirrors to {routing.describe(got_mirrors)}, "
                f"want {routing.describe(want_mirrors)}"
            )
    weight = routing.share_off_stable(deployment, split, _weighted(managed[0][1]["backendRefs"]))
    return routing.Comparison(tuple(differences), weight)


# The conformance features (GatewayClass status.supportedFeatures) a mirror needs.
MIRROR_FEATURE = "HTTPRouteRequestMirror"
PERCENT_MIRROR_FEATURE = "HTTPRouteRequestPercentageMirror"


def missing_mirror_features(supported: list[Object] | None, percent: int) -> list[str]:
    """The features a GatewayClass lacks to mirror `percent`% of requests as Pitstop
    writes it (a RequestMirror filter, with `percent` below 100).

    Implementations publish what they support in `status.supportedFeatures` (Gateway
    API v1.2 and later); one that publishes nothing is given the benefit of the doubt
    (nothing is missing), one that publishes a list without the filter is not: an
    implementation may refuse a rule whose filter it does not know by answering every
    request of that rule with an error (Traefik v3.7.13's source sends such a rule to a
    handler answering 500), which would take the stable model down with the shadow.
    """
    if supported is None:
        return []
    names = {str(f.get("name")) if isinstance(f, dict) else str(f) for f in supported}
    wanted = [MIRROR_FEATURE] + ([PERCENT_MIRROR_FEATURE] if percent < 100 else [])
    return [feature for feature in wanted if feature not in names]
