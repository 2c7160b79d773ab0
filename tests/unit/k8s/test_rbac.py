"""The chart's RBAC grants what the operator's code declares it uses, where, and no more.

What the operator needs is read from the code: each `KubeClient` method's `@uses`
declaration, the resources Kopf watches for `pitstop.handlers` (from Kopf's registry),
and what Kopf itself reads (`permissions.KOPF`). The chart is rendered with `helm
template` in both modes and the permissions its bindings give the operator's
ServiceAccount are compared with that. No cluster needed; only the helm binary of the
local control plane's cache.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import kopf
import pytest
from chart import RELEASE_NAMESPACE, render
from pitstop import handlers
from pitstop.k8s import permissions
from pitstop.k8s.client import KubeClient
from pitstop.k8s.permissions import Permission

SERVICE_ACCOUNT = "pitstop"
WATCHED = ("ml", "fraud")
BUILDS = "pitstop-builds"  # the chart's default build.namespace
READ_VERBS = {"get", "list", "watch"}
EVERYWHERE = "*"


@dataclass(frozen=True, order=True)
class Grant:
    """One verb on one resource, in one namespace (`EVERYWHERE`: cluster-wide)."""

    namespace: str
    group: str
    resource: str  # with its subresource: deployments/scale
    verb: str


def grants(objects: Iterable[dict[str, Any]]) -> set[Grant]:
    """What the bindings of the rendered chart give the operator's ServiceAccount."""
    objects = list(objects)
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in {"Role", "ClusterRole"}
    }
    found: set[Grant] = set()
    for binding in objects:
        if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
            continue
        subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                   "namespace": RELEASE_NAMESPACE}  # fmt: skip
        if subject not in binding["subjects"]:
            continue
        where = binding["metadata"].get("namespace")  # None for a ClusterRoleBinding
        ref = binding["roleRef"]
        role = roles[(ref["kind"], where if ref["kind"] == "Role" else None, ref["name"])]
        where = where or EVERYWHERE
        for rule in role["rules"]:
            assert not rule.get("resourceNames"), rule
            assert not rule.get("nonResourceURLs"), rule
            for group, resource, verb in itertools.product(
                rule["apiGroups"], rule["resources"], rule["verbs"]
            ):
                assert "*" not in (group, resource, verb), f"a wildcard grants too much: {rule}"
                found.add(Grant(where, group, resource, verb))
    return found


def kopf_watches() -> set[Permission]:
    """List and watch of every resource `pitstop.handlers` registers a handler for."""
    registry = kopf.get_default_registry()
    assert handlers.model_deployment_changed  # registered on import
    # Kopf's own resource observer collects the selectors of these registries.
    parts = (registry._watching, registry._changing, registry._spawning, registry._indexing,
             registry._webhooks)  # fmt: skip
    selectors = {s for part in parts for s in part.get_all_selectors()}
    # handlers.py names resources by plural (Kopf matches `any_name` against it).
    named = {(s.group or "", str(s.plural or s.any_name)) for s in selectors}
    assert {
        ("pitstop.dev", "modeldeployments"),
        ("apps", "deployments"),
        ("batch", "jobs"),
    } <= named
    return {Permission(group, plural, verb) for group, plural in named
            for verb in ("list", "watch")}  # fmt: skip


def facade(audience: permissions.Audience = "operator") -> set[Permission]:
    found: set[Permission] = set()
    for _, method in inspect.getmembers(KubeClient, inspect.isfunction):
        uses = permissions.declared(method)
        if uses is not None and uses.audience == audience:
            found |= uses.permissions
    return found


def needed(clusterwide: bool) -> set[Permission]:
    kopf_own = set(permissions.KOPF) | (set() if clusterwide else set(permissions.KOPF_NAMESPACED))
    return facade() | kopf_watches() | kopf_own


def grant(permission: Permission, namespace: str) -> Grant:
    return Grant(namespace, permission.group, permission.rbac_resource, permission.verb)


def test_every_facade_method_declares_the_permissions_it_uses() -> None:
    public = [
        name
        for name, method in inspect.getmembers(KubeClient, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert "scale_deployment" in public
    undeclared = [name for name in public if not permissions.declared(getattr(KubeClient, name))]
    assert undeclared == []
    scale = permissions.declared(KubeClient.scale_deployment)
    assert scale is not None
    assert scale.permissions == {Permission("apps", "deployments", "patch", "scale")}


def test_generic_methods_refuse_a_kind_they_do_not_declare() -> None:
    from pitstop.k8s import client

    permissions.check_kind(client.APPLIED, "apps/v1beta2", "Deployment")  # any version
    with pytest.raises(permissions.UndeclaredKind, match=r"Secret\.core"):
        permissions.check_kind(client.APPLIED, "v1", "Secret")
    with pytest.raises(permissions.UndeclaredKind):
        permissions.check_kind(client.ANNOTATED, "pitstop.dev/v1alpha1", "ModelDeployment")


def test_gates_of_a_person_are_not_the_operators_permissions() -> None:
    """`pitstop promote` patches the ModelDeployment with the user's credentials; the
    operator only ever writes its status."""
    assert Permission("pitstop.dev", "modeldeployments", "patch") in facade("cli")
    assert Permission("pitstop.dev", "modeldeployments", "patch") not in needed(True)


def test_decommission_deletes_the_object_as_the_person_never_as_the_operator() -> None:
    """`pitstop decommission` deletes the ModelDeployment with the user's credentials
    once the operator has removed its revisions; the operator may delete none."""
    delete = Permission("pitstop.dev", "modeldeployments", "delete")
    assert delete in facade("cli")
    assert delete not in needed(True)
    assert delete not in needed(False)


PLACES = {"own": RELEASE_NAMESPACE, "build": BUILDS}


def test_cluster_wide_install_grants_everything_the_operator_uses() -> None:
    given = grants(render())
    missing = [
        str(p)
        for p in sorted(needed(clusterwide=True))
        if grant(p, PLACES.get(p.scope, EVERYWHERE)) not in given
    ]
    assert missing == []


def test_namespaced_install_grants_it_in_the_watched_namespaces_only() -> None:
    given = grants(render("--set", "watchNamespaces={" + ",".join(WATCHED) + "}"))
    missing = []
    for p in sorted(needed(clusterwide=False)):
        places = {"cluster": [EVERYWHERE], "own": [RELEASE_NAMESPACE], "watched": list(WATCHED),
                  "build": [BUILDS]}  # fmt: skip
        missing += [f"{p} in {ns}" for ns in places[p.scope]
                    if grant(p, ns) not in given]  # fmt: skip
    assert missing == []
    cluster_wide = {g for g in given if g.namespace == EVERYWHERE}
    assert {g.resource for g in cluster_wide} == {
        "customresourcedefinitions", "namespaces", "gatewayclasses"
    }  # fmt: skip
    assert {g.verb for g in cluster_wide} <= READ_VERBS, "no cluster-wide write"
    assert {g.namespace for g in given} == {EVERYWHERE, RELEASE_NAMESPACE, BUILDS, *WATCHED}


def build_only(clusterwide: bool) -> set[tuple[str, str, str]]:
    """(group, resource, verb) the operator needs in the build namespace and nowhere else."""
    elsewhere = {(p.group, p.rbac_resource, p.verb) for p in needed(clusterwide)
                 if p.scope != "build"}  # fmt: skip
    return {(p.group, p.rbac_resource, p.verb) for p in needed(clusterwide)
            if p.scope == "build"} - elsewhere  # fmt: skip


@pytest.mark.parametrize("clusterwide", [True, False], ids=["cluster-wide", "namespaced"])
def test_builds_are_granted_in_the_build_namespace_only(clusterwide: bool) -> None:
    """Build Jobs run where their Pod Security level is enforced, never in a user's
    namespace (nor anywhere else): copying a Secret or reading a pod's log is granted in
    the build namespace alone, in both modes; and the build namespace grants nothing but
    builds. (Creating a Job is granted in watched namespaces too, for the one retraining
    Job a monitoring episode starts from the user's own template: it runs under that
    namespace's Pod Security, like the model servers' Deployments.)"""
    values = () if clusterwide else ("--set", "watchNamespaces={" + ",".join(WATCHED) + "}")
    given = grants(render(*values))
    only = build_only(clusterwide)
    assert {("", "secrets", "create"), ("", "pods/log", "get")} <= only
    retraining = permissions.declared(KubeClient.create_retrain_job)
    assert retraining is not None
    assert {(p.rbac_resource, p.verb, p.scope) for p in retraining.permissions} >= {
        ("jobs", "create", "watched")
    }
    outside = [g for g in sorted(given)
               if (g.group, g.resource, g.verb) in only and g.namespace != BUILDS]  # fmt: skip
    assert outside == []
    build = {(p.group, p.rbac_resource, p.verb) for p in needed(clusterwide) if p.scope == "build"}
    there = {(g.group, g.resource, g.verb) for g in given if g.namespace == BUILDS}
    assert there == build


def test_the_build_namespace_is_the_charts_value() -> None:
    given = grants(render("--set", "build.namespace=ml-builds"))
    assert Grant("ml-builds", "batch", "jobs", "create") in given
    assert BUILDS not in {g.namespace for g in given}


@pytest.mark.parametrize("clusterwide", [True, False], ids=["cluster-wide", "namespaced"])
def test_nothing_is_granted_that_no_code_uses(clusterwide: bool) -> None:
    values = () if clusterwide else ("--set", "watchNamespaces={" + ",".join(WATCHED) + "}")
    used = {grant(p, EVERYWHERE) for p in needed(clusterwide) | set(permissions.ANTICIPATED)}
    given = grants(render(*values))
    unused = [g for g in sorted(given) if dataclasses.replace(g, namespace=EVERYWHERE) not in used]
    assert unused == []


def test_without_rbac_create_the_chart_grants_nothing() -> None:
    assert grants(render("--set", "rbac.create=false")) == set()
