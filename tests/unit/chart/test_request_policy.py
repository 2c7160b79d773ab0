"""The chart's admission policy for manual requests: on by default, bound where the
operator works, off on request. (What it refuses is tested against the real API server
in tests/integration/test_governance.py.)"""

from __future__ import annotations

from typing import Any

from chart import render

POLICY = "ValidatingAdmissionPolicy"
BINDING = "ValidatingAdmissionPolicyBinding"


def policies(*values: str) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in render(*values) if o["kind"] in (POLICY, BINDING)}


def test_on_by_default_bound_everywhere_and_naming_both_annotations() -> None:
    found = policies()
    policy, binding = found[POLICY], found[BINDING]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] == "pitstop-requests"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "matchResources" not in binding["spec"]  # cluster-wide mode: every namespace
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["modeldeployments"]  # not modeldeployments/status
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    messages = " ".join(v["message"] for v in policy["spec"]["validations"])
    assert "pitstop.dev/request" in messages
    assert "pitstop.dev/requested-by" in messages
    assert "request.userInfo.username" in policy["spec"]["validations"][0]["expression"]


def test_namespaced_mode_binds_it_in_the_watched_namespaces_only() -> None:
    binding = policies("--set", "watchNamespaces={ml,risk}")[BINDING]
    (match,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert match == {"key": "kubernetes.io/metadata.name", "operator": "In",
                     "values": ["ml", "risk"]}  # fmt: skip


def test_it_can_be_switched_off() -> None:
    assert policies("--set", "governance.requestPolicy.enabled=false") == {}
