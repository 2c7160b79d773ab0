"""`DevCluster.get` takes a kind by any name kubectl takes, and picks the kind kubectl
would: tests read through it instead of starting a kubectl process per poll."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.dynamic import Resource
from pitstop.devcluster.testing import _named


def resource(group: str, version: str, kind: str, plural: str, **more: Any) -> Resource:
    return Resource(
        prefix="api" if not group else "apis", group=group, api_version=version, kind=kind,
        name=plural, singularName=kind.lower(), preferred=more.pop("preferred", True), **more,
    )  # fmt: skip


SERVED = [  # lists and subresources first: a pick by order alone would take them
    resource("", "v1", "EventList", "events", shortNames=["ev"]),
    resource("events.k8s.io", "v1", "Event", "events", shortNames=["ev"]),
    resource("", "v1", "Event", "events", shortNames=["ev"]),
    resource("apps", "v1", "Deployment", "deployments/scale"),
    resource("apps", "v1", "Deployment", "deployments", shortNames=["deploy"]),
    resource(
        "pitstop.dev",
        "v1alpha0",
        "ModelDeployment",
        "modeldeployments",
        shortNames=["md"],
        preferred=False,
    ),
    resource("pitstop.dev", "v1alpha1", "ModelDeployment", "modeldeployments", shortNames=["md"]),
]


@pytest.mark.parametrize("name", ["md", "modeldeployment", "modeldeployments", "ModelDeployment"])
def test_every_name_kubectl_takes_finds_the_preferred_version(name: str) -> None:
    found = _named(SERVED, name)
    assert (found.group, found.api_version, found.kind) == (
        "pitstop.dev", "v1alpha1", "ModelDeployment",
    )  # fmt: skip


def test_the_core_group_wins_a_name_two_groups_serve_and_lists_and_subresources_never_do() -> None:
    assert _named(SERVED, "events").group == ""
    assert _named(SERVED, "ev").kind == "Event"
    assert _named(SERVED, "deploy").name == "deployments"
    assert _named(SERVED, "deployment").name == "deployments"


def test_a_kind_not_served_is_none() -> None:
    assert _named(SERVED, "httproutes") is None
