"""VirtualService http routes for a split, and the comparison `verify()` relies on."""

from __future__ import annotations

from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.rendering import virtualservice
from pitstop.traffic.provider import Split

Object = dict[str, Any]
S, C = "aaaaaaaaaa", "bbbbbbbbbb"  # revision hashes of stable and candidate
STABLE = f"fraud-{S}.ml.svc.cluster.local"
CANDIDATE = f"fraud-{C}.ml.svc.cluster.local"


def dest(host: str, weight: int | None = None, port: int | None = 80) -> Object:
    destination: Object = {"host": host}
    if port is not None:
        destination["port"] = {"number": port}
    obj: Object = {"destination": destination}
    if weight is not None:
        obj["weight"] = weight
    return obj


def mirrored(host: str, percent: float) -> Object:
    return {
        "mirror": {"host": host, "port": {"number": 80}},
        "mirrorPercentage": {"value": percent},
    }


@pytest.mark.parametrize(
    ("split", "route", "mirror"),
    [
        (Split(S), [dest(STABLE, 100)], {}),
        (Split(S, C, weight=10), [dest(STABLE, 90), dest(CANDIDATE, 10)], {}),
        (Split(S, C, weight=100), [dest(STABLE, 0), dest(CANDIDATE, 100)], {}),
        (Split(S, C, mirror=100), [dest(STABLE, 100), dest(CANDIDATE, 0)], mirrored(CANDIDATE, 100.0)),
        (Split(S, C, weight=50, mirror=5), [dest(STABLE, 50), dest(CANDIDATE, 50)], mirrored(CANDIDATE, 5.0)),
        # Decommissioned: the entry Service, which selects no pod (Envoy answers 503).
        (Split(None), [dest("fraud.ml.svc.cluster.local", 100)], {}),
    ],
)  # fmt: skip
def test_desired_route_and_mirror(split: Split, route: list[Object], mirror: Object) -> None:
    assert virtualservice.route("fraud", "ml", split) == route
    assert virtualservice.mirror("fraud", "ml", split) == mirror


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("fraud", "fraud"),
        ("fraud.ml", "fraud"),
        ("fraud.ml.svc", "fraud"),
        ("fraud.ml.svc.cluster.local", "fraud"),
        (STABLE, f"fraud-{S}"),
        ("fraud.other.svc.cluster.local", None),
        ("fraud.example.com", None),
        ("fraudster", None),
        ("fraud-notarevision", None),
    ],
)  # fmt: skip
def test_own_service_by_host(host: str, service: str | None) -> None:
    assert virtualservice.own_service("fraud", "ml", host) == service


@pytest.mark.parametrize(
    ("rule", "managed"),
    [
        ({"route": [dest("fraud", port=None)]}, True),
        ({"route": [dest(STABLE, 90), dest(CANDIDATE, 10)]}, True),
        ({"route": [dest("fraud"), dest("other")]}, False),
        ({"route": []}, False),
        ({"redirect": {"uri": "/v2"}}, False),
    ],
)  # fmt: skip
def test_which_http_routes_pitstop_manages(rule: Object, managed: bool) -> None:
    assert virtualservice.is_managed("fraud", "ml", rule) is managed


def test_rewrite_touches_only_route_and_mirror_of_managed_routes() -> None:
    match = [{"uri": {"prefix": "/predict"}}]
    mirrors = [{"destination": {"host": "audit"}, "percentage": {"value": 1.0}}]
    http = [
        {"name": "predict", "match": match, "retries": {"attempts": 2}, "mirrors": mirrors,
         "route": [dest("fraud", port=None)], "mirrorPercent": 3},
        {"name": "other", "route": [dest("other")]},
    ]  # fmt: skip
    rewritten = virtualservice.rewrite("fraud", "ml", http, Split(S, C, weight=10, mirror=50))
    assert rewritten == [
        {"name": "predict", "match": match, "retries": {"attempts": 2}, "mirrors": mirrors,
         "route": [dest(STABLE, 90), dest(CANDIDATE, 10)], **mirrored(CANDIDATE, 50.0)},
        http[1],
    ]  # fmt: skip
    back = virtualservice.rewrite("fraud", "ml", rewritten, Split(S))
    assert back[0] == {"name": "predict", "match": match, "retries": {"attempts": 2},
                       "mirrors": mirrors, "route": [dest(STABLE, 100)]}  # fmt: skip


def test_owned_virtual_service_is_labelled_owned_and_routed() -> None:
    md = ModelDeployment.model_validate(
        {"metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1"},
         "spec": {"model": {"name": "fraud", "version": "7"}, "image": "r.example/f:7"}}
    )  # fmt: skip
    obj = virtualservice.owned_virtual_service(
        md, "fraud-vs", ["fraud.example.com"], ["istio-system/gw"], Split(S, C, weight=10)
    )
    assert obj["apiVersion"] == "networking.istio.io/v1"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert obj["metadata"]["labels"]["pitstop.dev/model-deployment"] == "fraud"
    assert obj["spec"] == {
        "hosts": ["fraud.example.com"],
        "gateways": ["istio-system/gw"],
        "http": [{"name": "pitstop", "route": [dest(STABLE, 90), dest(CANDIDATE, 10)]}],
    }


@pytest.mark.parametrize(
    ("http", "split", "differences", "weight"),
    [
        ([{"route": [dest(STABLE, 100)]}], Split(S), [], 0),
        ([{"route": [dest(STABLE)]}], Split(S), [], 0),  # a lone destination takes all
        ([{"route": [dest(STABLE, 50), dest(CANDIDATE, 50)]}], Split(S, C, weight=50), [], 50),
        # a short host name of the same Service is the same destination
        ([{"route": [dest(f"fraud-{S}", 50), dest(f"fraud-{C}.ml", 50)]}], Split(S, C, weight=50),
         [], 50),
        ([{"route": [dest(STABLE, 100), dest(CANDIDATE, 0)], **mirrored(CANDIDATE, 100.0)}],
         Split(S, C, mirror=100), [], 0),
        # edited behind Pitstop's back
        ([{"route": [dest(STABLE, 100), dest(CANDIDATE, 0)]}], Split(S, C, weight=10),
         [f"http route 0 sends to fraud-{S}=100, fraud-{C}=0, want fraud-{S}=90, fraud-{C}=10"], 0),
        ([{"route": [dest(STABLE, 100), dest(CANDIDATE, 0)], **mirrored(CANDIDATE, 10.0)}],
         Split(S, C, mirror=100), [f"http route 0 mirrors to fraud-{C}=10, want fraud-{C}=100"], 0),
        ([{"route": [dest(STABLE, 100), dest(CANDIDATE, 0)], **mirrored(CANDIDATE, 10.0)}],
         Split(S, C), [f"http route 0 mirrors to fraud-{C}=10, want nothing"], 0),
        ([{"route": [dest(STABLE, port=None)]}], Split(S), ["http route 0 uses ports [None], want 80"], 0),
        ([{"route": [dest("other")]}], Split(S),
         ["no http route sends to the Services of fraud (destination host fraud or "
          "fraud-<revision>)"], None),
    ],
)  # fmt: skip
def test_compare(
    http: list[Object], split: Split, differences: list[str], weight: int | None
) -> None:
    found = virtualservice.compare("fraud", "ml", http, split)
    assert list(found.differences) == differences
    assert found.weight == weight
