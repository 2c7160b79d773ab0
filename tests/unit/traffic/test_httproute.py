"""HTTPRoute rules for a split, and the comparison `verify()` relies on."""

from __future__ import annotations

from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.rendering import httproute
from pitstop.traffic.provider import Split

Object = dict[str, Any]
S, C = "aaaaaaaaaa", "bbbbbbbbbb"  # revision hashes of stable and candidate


def ref(name: str, weight: int | None = None, **extra: Any) -> Object:
    obj: Object = {"name": name, "port": 80, **extra}
    if weight is not None:
        obj["weight"] = weight
    return obj


def mirror(name: str, percent: int) -> Object:
    return {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": name, "port": 80}, "percent": percent},
    }


HEADER = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]}}  # fmt: skip


@pytest.mark.parametrize(
    ("split", "refs", "filter_"),
    [
        (Split(S), [ref(f"fraud-{S}", 100)], None),
        (Split(S, C, weight=0), [ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)], None),
        (Split(S, C, weight=10), [ref(f"fraud-{S}", 90), ref(f"fraud-{C}", 10)], None),
        (Split(S, C, weight=100), [ref(f"fraud-{S}", 0), ref(f"fraud-{C}", 100)], None),
        (Split(S, C, mirror=100), [ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)],
         mirror(f"fraud-{C}", 100)),
        (Split(S, C, weight=20, mirror=5), [ref(f"fraud-{S}", 80), ref(f"fraud-{C}", 20)],
         mirror(f"fraud-{C}", 5)),
        (Split(S, None, mirror=50), [ref(f"fraud-{S}", 100)], None),  # nothing to mirror to
        # Decommissioned: back to the entry Service, which selects no pod.
        (Split(None), [ref("fraud", 100)], None),
    ],
)  # fmt: skip
def test_desired_backends_and_mirror(
    split: Split, refs: list[Object], filter_: Object | None
) -> None:
    assert httproute.backend_refs("fraud", split) == refs
    assert httproute.mirror_filter("fraud", split) == filter_


@pytest.mark.parametrize(
    ("rule", "managed"),
    [
        ({"backendRefs": [ref("fraud")]}, True),  # the entry Service: where a user starts
        ({"backendRefs": [ref(f"fraud-{S}", 90), ref(f"fraud-{C}", 10)]}, True),
        ({"backendRefs": [ref("fraud", kind="Service", group="")]}, True),
        ({"backendRefs": [ref("fraud", namespace="ml")]}, True),
        ({"backendRefs": [ref("fraud", namespace="other")]}, False),
        ({"backendRefs": [ref("fraud"), ref("other")]}, False),
        ({"backendRefs": [ref("fraudster")]}, False),
        ({"backendRefs": [ref("fraud-xyz")]}, False),  # not a revision hash
        ({"backendRefs": [ref("fraud", kind="ServiceImport", group="multicluster.x-k8s.io")]},
         False),
        ({"backendRefs": []}, False),
        ({"filters": [{"type": "RequestRedirect", "requestRedirect": {"port": 8443}}]}, False),
    ],
)  # fmt: skip
def test_which_rules_pitstop_manages(rule: Object, managed: bool) -> None:
    assert httproute.is_managed("fraud", "ml", rule) is managed


def test_rewrite_touches_only_backends_and_own_mirror_of_managed_rules() -> None:
    other_mirror = {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "audit", "port": 80}},
    }
    matches = [{"path": {"type": "PathPrefix", "value": "/predict"}}]
    rules = [
        {"matches": matches, "filters": [HEADER, mirror(f"fraud-{S}", 10), other_mirror],
         "backendRefs": [ref("fraud")], "timeouts": {"request": "10s"}},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
         "backendRefs": [ref("other")]},
    ]  # fmt: skip
    rewritten = httproute.rewrite("fraud", "ml", rules, Split(S, C, weight=10, mirror=50))
    assert rewritten == [
        {"matches": matches, "filters": [HEADER, other_mirror, mirror(f"fraud-{C}", 50)],
         "backendRefs": [ref(f"fraud-{S}", 90), ref(f"fraud-{C}", 10)],
         "timeouts": {"request": "10s"}},
        rules[1],
    ]  # fmt: skip
    back = httproute.rewrite("fraud", "ml", rewritten, Split(S))
    assert back[0]["filters"] == [HEADER, other_mirror]
    assert back[0]["backendRefs"] == [ref(f"fraud-{S}", 100)]
    assert "filters" not in httproute.rewrite("fraud", "ml", [{"backendRefs": [ref("fraud")]}],
                                              Split(S))[0]  # fmt: skip


def test_owned_route_is_labelled_owned_and_attached() -> None:
    md = ModelDeployment.model_validate(
        {"metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1"},
         "spec": {"model": {"name": "fraud", "version": "7"}, "image": "r.example/f:7"}}
    )  # fmt: skip
    route = httproute.owned_route(md, "fraud-route", [{"name": "gw"}], ["fraud.example.com"],
                                  Split(S, C, mirror=100))  # fmt: skip
    assert route["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert route["metadata"]["labels"]["pitstop.dev/model-deployment"] == "fraud"
    assert route["spec"] == {
        "parentRefs": [{"name": "gw"}],
        "hostnames": ["fraud.example.com"],
        "rules": [{"backendRefs": [ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)],
                   "filters": [mirror(f"fraud-{C}", 100)]}],
    }  # fmt: skip


# As the API server returns them: defaulted group, kind and matches.
def served(refs: list[Object], filters: list[Object] | None = None) -> Object:
    rule: Object = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"group": "", "kind": "Service", **r} for r in refs],
    }
    if filters:
        rule["filters"] = filters
    return rule


@pytest.mark.parametrize(
    ("rules", "split", "differences", "weight"),
    [
        ([served([ref(f"fraud-{S}", 100)])], Split(S), [], 0),
        ([served([ref(f"fraud-{S}", 90), ref(f"fraud-{C}", 10)])], Split(S, C, weight=10), [], 10),
        ([served([ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)], [mirror(f"fraud-{C}", 100)])],
         Split(S, C, mirror=100), [], 0),
        # edited behind Pitstop's back: weights reset to the stable revision
        ([served([ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)])], Split(S, C, weight=50),
         [f"rule 0 sends to fraud-{S}=100, fraud-{C}=0, want fraud-{S}=50, fraud-{C}=50"], 0),
        # weights need not sum to 100: 1 and 3 give the candidate 75%
        ([served([ref(f"fraud-{S}", 1), ref(f"fraud-{C}", 3)])], Split(S, C, weight=75),
         [f"rule 0 sends to fraud-{S}=1, fraud-{C}=3, want fraud-{S}=25, fraud-{C}=75"], 75),
        ([served([ref(f"fraud-{S}")])], Split(S), [f"rule 0 sends to fraud-{S}=1, want fraud-{S}=100"], 0),
        ([served([ref(f"fraud-{S}", 100)])], Split(S, C, mirror=20),
         [f"rule 0 sends to fraud-{S}=100, want fraud-{S}=100, fraud-{C}=0",
          f"rule 0 mirrors to nothing, want fraud-{C}=20"], 0),
        ([served([ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)], [mirror(f"fraud-{C}", 20)])],
         Split(S, C), [f"rule 0 mirrors to fraud-{C}=20, want nothing"], 0),
        ([served([{"name": f"fraud-{S}", "port": 8080, "weight": 100}])], Split(S),
         ["rule 0 uses ports [8080], want 80"], 0),
        ([served([ref("other", 100)])], Split(S),
         ["no rule routes to the Services of fraud (backendRefs to fraud or fraud-<revision>)"],
         None),
        # every managed rule is checked; others are ignored
        ([served([ref(f"fraud-{S}", 100)]), served([ref("other")]), served([ref("fraud")])],
         Split(S), ["rule 2 sends to fraud=1, want fraud-aaaaaaaaaa=100"], 0),
    ],
)  # fmt: skip
def test_compare(
    rules: list[Object], split: Split, differences: list[str], weight: int | None
) -> None:
    found = httproute.compare("fraud", "ml", rules, split)
    assert list(found.differences) == differences
    assert found.weight == weight


def test_mirror_fraction_counts_as_percent() -> None:
    fraction = {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": f"fraud-{C}", "port": 80},
                          "fraction": {"numerator": 1, "denominator": 4}},
    }  # fmt: skip
    rules = [served([ref(f"fraud-{S}", 100), ref(f"fraud-{C}", 0)], [fraction])]
    assert httproute.compare("fraud", "ml", rules, Split(S, C, mirror=25)).differences == ()


@pytest.mark.parametrize(
    ("supported", "percent", "missing"),
    [
        (None, 40, []),  # the implementation does not say: given the benefit of the doubt
        ([{"name": "Gateway"}, {"name": "HTTPRoute"}], 100, ["HTTPRouteRequestMirror"]),
        ([{"name": "HTTPRoute"}, {"name": "HTTPRouteRequestMirror"}], 100, []),
        ([{"name": "HTTPRouteRequestMirror"}], 40, ["HTTPRouteRequestPercentageMirror"]),
        (
            [{"name": "HTTPRouteRequestMirror"}, {"name": "HTTPRouteRequestPercentageMirror"}],
            40,
            [],
        ),
        (["HTTPRouteRequestMirror"], 100, []),  # before v1.2 the list held plain names
    ],
)
def test_a_gateway_class_must_list_what_a_shadow_needs(
    supported: list[Any] | None, percent: int, missing: list[str]
) -> None:
    assert httproute.missing_mirror_features(supported, percent) == missing


def test_a_decommissioned_route_stays_managed_and_reads_back_in_place() -> None:
    """Routed to nothing, the rule still names only our Services: the next pass finds
    it, and the provider's read-back says the split is in place."""
    rules = [{"backendRefs": [ref(f"fraud-{S}", 90), ref(f"fraud-{C}", 10)]}]
    off = httproute.rewrite("fraud", "ml", rules, Split(None))
    assert off == [{"backendRefs": [ref("fraud", 100)]}]
    assert httproute.is_managed("fraud", "ml", off[0])
    assert httproute.compare("fraud", "ml", off, Split(None)).differences == ()
    assert httproute.compare("fraud", "ml", rules, Split(None)).differences != ()
