"""The governance trail on the real API server: who asked for a manual gate is the API
server's word, and the history names them; `approval: Required` holds a candidate.

The chart (installed by the `release` fixture, as a user installs it) ships the
ValidatingAdmissionPolicy that holds `pitstop.dev/requested-by` to the user the API
server authenticated. `alice` is a real user here: a client certificate signed by the
cluster's CA, with a Role to patch ModelDeployments in the test's namespace and nothing
else; she runs the real `pitstop` CLI with her own kubeconfig.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop.devcluster import certs, testing
from pitstop.devcluster.operator_process import OperatorProcess
from test_rollouts_service import World

pytestmark = pytest.mark.integration

REQUEST, REQUESTED_BY = "pitstop.dev/request", "pitstop.dev/requested-by"
INSTANT = {"type": "BlueGreen", "blueGreen": {"autoPromote": False, "scaleDownDelay": "0s"}}


def grant_alice(cluster: testing.DevCluster, namespace: str) -> None:
    """What a team's user gets: read and patch ModelDeployments in their namespace."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "md-gates", "namespace": namespace},
            "rules": [{"apiGroups": ["pitstop.dev"], "resources": ["modeldeployments"],
                       "verbs": ["get", "list", "watch", "patch"]}]}  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "md-gates-alice", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "md-gates"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "alice"}]}  # fmt: skip
    for obj in (role, binding):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def alice_kubeconfig(cluster: testing.DevCluster, path: Path) -> Path:
    """The admin kubeconfig's cluster, with alice's client certificate as its only user."""
    pair = certs.issue(cluster.state_dir / "pki", "test-alice", common_name="alice", client=True)
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "alice", "user": {"client-certificate": str(pair.cert),
                                                  "client-key": str(pair.key)}}]  # fmt: skip
    config["contexts"][0]["context"]["user"] = "alice"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def pitstop(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `pitstop` CLI with `kubeconfig`'s credentials."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([sys.executable, "-m", "pitstop", *args], env=env,
                          capture_output=True, text=True, timeout=90, check=False)  # fmt: skip


def annotate(
    cluster: testing.DevCluster, namespace: str, *pairs: str, user: str | None = "alice"
) -> subprocess.CompletedProcess[str]:
    """`kubectl annotate` of the ModelDeployment as `user` (impersonated by the admin),
    or as the admin itself."""
    who = [f"--as={user}"] if user else []
    return cluster.kubectl("annotate", "md", "fraud", "-n", namespace, *pairs, "--overwrite",
                           *who, check=False)  # fmt: skip


def request(action: str = "promote") -> str:
    return f"{REQUEST}=" + json.dumps({"action": action, "id": uuid.uuid4().hex[:12]})


def test_the_policy_holds_requested_by_to_the_authenticated_user(
    cluster: testing.DevCluster, namespace: str, crd: str, release: object
) -> None:
    grant_alice(cluster, namespace)
    World(cluster, namespace).apply("1", INSTANT)  # no annotations at all: admitted

    def refused() -> subprocess.CompletedProcess[str] | None:
        # A new request each time: one admitted before the policy took effect would
        # otherwise make the next try no change at all.
        done = annotate(cluster, namespace, request(), f"{REQUESTED_BY}=bob")
        return done if done.returncode != 0 else None

    done = cluster.wait("the chart's request policy in effect", refused)
    assert "ValidatingAdmissionPolicy" in done.stderr
    named = "annotation pitstop.dev/request must come with annotation pitstop.dev/requested-by"
    assert f"{named}: alice" in done.stderr
    without = annotate(cluster, namespace, request())
    assert without.returncode != 0
    assert "pitstop.dev/requested-by" in without.stderr

    mine = annotate(cluster, namespace, request(), f"{REQUESTED_BY}=alice")
    assert mine.returncode == 0, mine.stderr
    relabelled = annotate(cluster, namespace, f"{REQUESTED_BY}=bob")
    assert relabelled.returncode != 0
    assert "it changes only with a new request" in relabelled.stderr
    # Writes that leave the request alone pass, whoever makes them: a GitOps apply (as
    # the admin here) changing the spec, and another annotation by alice.
    World(cluster, namespace).apply("2", INSTANT)
    assert annotate(cluster, namespace, "team=fraud").returncode == 0
    # Nobody, not even a cluster admin, makes a request under alice's name.
    admin = cluster.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    stolen = annotate(cluster, namespace, request("abort"), user=None)
    assert stolen.returncode != 0
    assert f"requested-by: {admin}" in stolen.stderr


def history_requests(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for h in status.get("history") or [] for q in h.get("requests") or []]


def test_the_history_names_the_user_who_promoted(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    grant_alice(cluster, namespace)
    kubeconfig = alice_kubeconfig(cluster, tmp_path / "alice.kubeconfig")
    world = World(cluster, namespace)
    world.apply("1", INSTANT)
    world.healthy("1")
    world.apply("2", INSTANT)
    world.until("v2 in preview", lambda s: s.get("phase") == "Paused")

    reason = "shadow metrics reviewed in the weekly model review"
    out = pitstop(kubeconfig, "promote", "fraud", "-n", namespace, "--reason", reason)
    assert out.returncode == 0, out.stderr
    assert f"promote requested for {namespace}/fraud by alice" in out.stdout
    promoted = world.healthy("2")
    entry = next(h for h in promoted["history"] if h["version"] == "2")
    (record,) = entry["requests"]
    assert (record["action"], record["by"], record["reason"], record["result"]) == (
        "promote", "alice", reason, "Done"
    )  # fmt: skip
    assert record["at"]
    meta = world.md()["metadata"]["annotations"]
    assert meta[REQUESTED_BY] == "alice"
    events = world.get("events", "--field-selector", "reason=PromoteRequested")["items"]
    assert any(f"(by alice: {reason})" in e["message"] for e in events)
    shown = pitstop(kubeconfig, "status", "fraud", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert "alice" in shown.stdout
    assert "manual requests" in shown.stdout


def test_approval_required_holds_a_passing_candidate_until_promote(
    cluster: testing.DevCluster, namespace: str, operator: OperatorProcess
) -> None:
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "1s"}]}}
    world = World(cluster, namespace)
    world.apply("1", canary, approval="Required")
    world.healthy("1")  # a first revision has nothing to be approved against
    world.apply("2", canary, approval="Required")
    held = world.until("v2 held for approval", lambda s: s.get("phase") == "Paused")
    paused = next(c for c in held["conditions"] if c["type"] == "Paused")
    assert paused["reason"] == "AwaitingApproval"
    assert "waiting for approval: `pitstop promote fraud`" in held["message"]
    assert (held["stable"]["version"], held["candidate"]["version"]) == ("1", "2")
    assert held["traffic"]["candidate"] == 50  # its last step's weight, not all traffic

    out = world.pitstop("promote", "--reason", "approved by the risk team")
    assert "promote requested" in out.stdout
    done = world.healthy("2")
    entry = next(h for h in done["history"] if h["version"] == "2")
    assert [(q["action"], q["reason"]) for q in entry["requests"]] == [
        ("promote", "approved by the risk team")
    ]


def test_the_api_server_refuses_an_unknown_approval(
    cluster: testing.DevCluster, namespace: str, crd: str
) -> None:
    body = {"apiVersion": "pitstop.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "fraud"},
            "spec": {"model": {"name": "fraud", "version": "1"}, "image": "reg/fraud:1",
                     "approval": "Sometimes"}}  # fmt: skip
    done = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                           input=json.dumps(body), check=False)  # fmt: skip
    assert done.returncode != 0
    assert "spec.approval" in done.stderr
    assert '"Automatic", "Required"' in done.stderr
