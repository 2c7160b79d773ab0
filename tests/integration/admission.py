"""Make the real API server refuse chosen writes in one namespace, on purpose.

A ValidatingAdmissionPolicy (CEL, evaluated inside the API server) bound to a test's
namespace stands in for what clusters do to operators — an admission webhook, a policy
engine, a stale object: the operator's write fails with the API server's own answer
(422 Invalid), and nothing in the operator is stubbed or told. Set up with admin
credentials, as a cluster admin would. The message never says "forbidden": a 403 in the
operator's log means a missing RBAC rule, which the fixtures count.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pitstop.devcluster import testing

MESSAGE = "refused on purpose by the test"


class Refusal:
    """A policy and its binding; `lift` lets the writes through again."""

    def __init__(self, cluster: testing.DevCluster, name: str) -> None:
        self.cluster, self.name = cluster, name

    def lift(self) -> None:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            self.cluster.kubectl("delete", kind, self.name, "--ignore-not-found", "--wait=false")


def refuse(
    cluster: testing.DevCluster,
    namespace: str,
    name: str,
    *,
    group: str,
    resource: str,
    operation: str,
    allowed: str,
    probe: Callable[[], bool],
) -> Refusal:
    """Refuse `operation` on `resource` in `namespace` whenever the CEL expression
    `allowed` is false; returns once `probe` (a dry-run write) sees the refusal, since a
    new policy takes effect a moment after it is created."""
    rule = {"apiGroups": [group], "apiVersions": ["*"], "operations": [operation],
            "resources": [resource]}  # fmt: skip
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [rule]},
            "validations": [{"expression": allowed, "message": MESSAGE}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    for obj in (policy, binding):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    refusal = Refusal(cluster, name)
    cluster.wait(f"policy {name} in effect", probe, timeout=60)
    return refusal


def refused(done: object) -> bool:
    """Whether a kubectl run (a CompletedProcess) was refused by one of these policies."""
    stderr = getattr(done, "stderr", "")
    return getattr(done, "returncode", 0) != 0 and MESSAGE in stderr
