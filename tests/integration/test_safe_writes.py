"""Writes that fail, on the real control plane: the operator says why, and never undoes
a rollback because a write failed.

The API server itself refuses the writes (a ValidatingAdmissionPolicy bound to the
test's namespace, see `admission`); the operator is the real process on the chart's
ServiceAccount.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import admission  # beside this file
import pytest
import yaml
from httproute import TRAFFIC, user_route, weights
from metric_webhook import Webhook, analysis
from pitstop import reconcile
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from pitstop.k8s import client
from pitstop.k8s.outbox import Outbox
from watching import History

pytestmark = pytest.mark.integration

Object = dict[str, Any]
MANAGED = "app.kubernetes.io/managed-by"
INSTANT = {"type": "BlueGreen", "blueGreen": {"scaleDownDelay": "0s"}}


def manifest(version: str, strategy: Object, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud"},
            "spec": {
                "model": {"name": "fraud", "version": version},
                "image": f"registry.example.com/ml/fraud:{version}",
                "serving": {"replicas": 2},
                "strategy": strategy,
                **spec,
            },
        }
    )


def get(cluster: testing.DevCluster, namespace: str, *what: str) -> Any:
    return cluster.read(*what, namespace=namespace)


def condition(md: Object, type_: str) -> Object:
    found: Object = next(
        (c for c in md.get("status", {}).get("conditions", []) if c["type"] == type_), {}
    )
    return found


def events(cluster: testing.DevCluster, namespace: str, reason: str) -> list[Object]:
    found = get(cluster, namespace, "events", "--field-selector",
                f"involvedObject.name=fraud,reason={reason}")  # fmt: skip
    items: list[Object] = found["items"]
    return items


@pytest.fixture
def refusals(cluster: testing.DevCluster) -> Iterator[list[admission.Refusal]]:
    made: list[admission.Refusal] = []
    yield made
    for refusal in made:
        refusal.lift()


def refuse_deployments(
    cluster: testing.DevCluster, namespace: str, refusals: list[admission.Refusal]
) -> admission.Refusal:
    """The API server refuses every Deployment Pitstop creates in `namespace`."""
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe", "namespace": namespace, "labels": {MANAGED: "pitstop"}},
        "spec": {
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {
                "metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "c", "image": "probe"}]},
            },
        },
    }

    def in_effect() -> bool:
        done = cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                               input=json.dumps(probe), check=False)  # fmt: skip
        return admission.refused(done)

    refusal = admission.refuse(
        cluster, namespace, f"no-deployments-{namespace}",
        group="apps", resource="deployments", operation="CREATE",
        allowed=f"object.metadata.?labels[?'{MANAGED}'].orValue('') != 'pitstop'",
        probe=in_effect,
    )  # fmt: skip
    refusals.append(refusal)
    return refusal


def test_a_reconcile_that_fails_says_why_in_a_condition_and_an_event(
    cluster: testing.DevCluster,
    namespace: str,
    operator: OperatorProcess,
    refusals: list[admission.Refusal],
) -> None:
    refusal = refuse_deployments(cluster, namespace, refusals)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("1", INSTANT))

    def failed() -> Object | None:
        md: Object = get(cluster, namespace, "md", "fraud")
        return md if condition(md, "Reconciled").get("reason") == "ReconcileError" else None

    md = cluster.wait("a Reconciled=False condition", failed, timeout=60)
    reconciled = condition(md, "Reconciled")
    assert reconciled["status"] == "False"
    assert admission.MESSAGE in reconciled["message"]
    assert "Deployment" in reconciled["message"]  # what the operator was doing
    assert admission.MESSAGE in md["status"]["message"]
    # Retried with backoff; the identical warnings are one Event that counts them.
    warned = cluster.wait(
        "the failure retried and counted on one Event",
        lambda: (
            (found := events(cluster, namespace, "ReconcileError"))
            and found[0]["count"] >= 2
            and found
        ),
    )
    assert len(warned) == 1
    assert warned[0]["type"] == "Warning"
    assert admission.MESSAGE in warned[0]["message"]

    refusal.lift()
    done = cluster.wait(
        "Healthy once the Deployments are admitted",
        lambda: (
            (md := get(cluster, namespace, "md", "fraud"))["status"].get("phase") == "Healthy"
            and condition(md, "Reconciled").get("status") == "True"
            and md
        ),
        timeout=90,
    )
    assert condition(done, "Reconciled")["reason"] == "ReconcileSuccess"
    assert admission.MESSAGE not in done["status"]["message"]


def test_a_refused_status_write_never_sends_traffic_back_to_a_rolled_back_candidate(
    cluster: testing.DevCluster,
    gateway_api: None,
    namespace: str,
    operator: OperatorProcess,
    webhook: Webhook,
    refusals: list[admission.Refusal],
) -> None:
    """The API server refuses the status that records a rollback. Nothing may have moved
    yet: had the route gone to the stable first, the next pass would read the status that
    still says 50% and — the check passing again meanwhile — route 50% back to the
    candidate. A watch on the route sees every weight it ever had."""
    cluster.kubectl("apply", "--server-side", "--field-manager=user", "-f", "-",
                    input=json.dumps(user_route(namespace)))  # fmt: skip
    canary = {
        "type": "Canary",
        "canary": {"steps": [{"weight": 50, "pause": "1h", "minPause": "1h"}]},
    }
    spec = {"analysis": analysis(webhook.url), "traffic": TRAFFIC}

    def when(what: str, ok: Callable[[Object, Object], bool]) -> tuple[Object, Object]:
        """The ModelDeployment and its route, once `ok` holds of them."""

        def probe() -> tuple[Object, Object] | None:
            md, found = get(cluster, namespace, "md/fraud", "httproute/fraud")["items"]
            return (md, found) if ok(md, found) else None

        return cluster.wait(what, probe, timeout=90)

    def phase(md: Object) -> str | None:
        found: str | None = md.get("status", {}).get("phase")
        return found

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("1", canary, **spec))
    md, _ = when("v1 Healthy", lambda md, _: phase(md) == "Healthy")
    old = f"fraud-{md['status']['stable']['revision']}"
    history = History(cluster, namespace, "httproute", "fraud")
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("2", canary, **spec))
        md, _ = when("50% on v2, checks passing", lambda md, route: [w for _, w in weights(route)]
                     == [50, 50] and md["status"].get("analysis", {}).get("verdict") == "Pass")  # fmt: skip
        new = f"fraud-{md['status']['candidate']['revision']}"

        def probe() -> bool:
            patch = json.dumps({"status": {"phase": "RolledBack"}})
            return admission.refused(cluster.kubectl(
                "patch", "md", "fraud", "-n", namespace, "--subresource=status",
                "--type=merge", "-p", patch, "--dry-run=server", check=False))  # fmt: skip

        refusal = admission.refuse(
            cluster, namespace, f"no-rollback-{namespace}",
            group="pitstop.dev", resource="modeldeployments/status", operation="UPDATE",
            allowed="object.?status.?phase.orValue('') != 'RolledBack'", probe=probe,
        )  # fmt: skip
        refusals.append(refusal)
        webhook.passing = False
        md, now = when("the rollback decided, its status refused",
                       lambda md, _: condition(md, "Reconciled").get("reason") == "ReconcileError")  # fmt: skip
        assert admission.MESSAGE in condition(md, "Reconciled")["message"]
        assert md["status"]["phase"] == "Progressing"
        assert weights(now) == [(old, 50), (new, 50)]  # nothing acted on an uncommitted rollback

        # The check passes again: the refused decision is gone, and nothing may undo
        # what was never done. A few passes go by on the old status.
        webhook.passing = True
        calls = len(webhook.calls)
        cluster.wait("three more checks", lambda: len(webhook.calls) >= calls + 3)

        webhook.passing = False
        refusal.lift()
        # The status commits the rollback, then the route follows it.
        md, last = when("rolled back, all on the stable",
                        lambda md, route: phase(md) == "RolledBack" and weights(route) == [(old, 100)])  # fmt: skip
        assert md["status"]["rejectedRevision"] == new.removeprefix("fraud-")
        assert history.changes(last, weights) == [
            [(old, 100)],
            [(old, 50), (new, 50)],
            [(old, 100)],
        ], history.shown
    finally:
        history.close()


@pytest.mark.parametrize("queued", [False, True], ids=["in-line", "outbox"])
def test_ten_identical_warnings_are_one_event_counted_ten_times(
    cluster: testing.DevCluster,
    namespace: str,
    crd: str,
    operator_kubeconfig: Path,
    queued: bool,
) -> None:
    """The facade itself, on the chart's ServiceAccount: the tenth identical warning
    bumps the first one's count and lastTimestamp; another message is another Event.
    Alike whether posted in line (the CLI) or from an outbox (the operator)."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("1", INSTANT))
    outbox = Outbox() if queued else None
    kube = client.connect(str(operator_kubeconfig), identity="replica-a", outbox=outbox)
    owner = kube.get_model_deployment(namespace, "fraud")
    assert owner is not None
    for _ in range(10):
        kube.post_event(owner, "Warning", "Flaky", "the same thing went wrong")
    kube.post_event(owner, "Warning", "Flaky", "something else went wrong")
    if outbox is not None:
        assert outbox.flush(30)
        outbox.stop()

    found = sorted(events(cluster, namespace, "Flaky"), key=lambda e: -e["count"])
    assert [(e["message"], e["count"]) for e in found] == [
        ("the same thing went wrong", 10),
        ("something else went wrong", 1),
    ]
    counted = found[0]
    assert counted["type"] == "Warning"
    assert counted["lastTimestamp"] >= counted["firstTimestamp"]
    assert counted["reportingInstance"] == "replica-a"


def test_a_status_decided_from_a_stale_object_is_refused_and_nothing_is_acted(
    cluster: testing.DevCluster, namespace: str, crd: str, operator_kubeconfig: Path
) -> None:
    """One pass in this process, on the chart's ServiceAccount, whose read is stale: a
    user annotated the object after it was read. The API server refuses its status
    (409), the pass does nothing else and asks to run again at once; the next pass,
    reading afresh, goes ahead."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("1", INSTANT))
    kube = client.connect(str(operator_kubeconfig))
    stale = kube.get_model_deployment(namespace, "fraud")
    cluster.kubectl("annotate", "md", "fraud", "-n", namespace, "team=fraud")

    class StaleRead(client.KubeClient):
        def get_model_deployment(self, namespace: str, name: str) -> Object | None:
            return stale

    result = reconcile.reconcile(StaleRead(kube.api), namespace, "fraud")
    assert result.requeue_after == 0  # soon, not after a backoff
    assert "status" not in get(cluster, namespace, "md", "fraud")
    assert get(cluster, namespace, "deployments")["items"] == []  # nothing acted

    class Counted(client.KubeClient):
        writes = 0

        def patch_status(self, *args: Any, **kwargs: Any) -> str:
            Counted.writes += 1
            return super().patch_status(*args, **kwargs)

    reconcile.reconcile(Counted(kube.api), namespace, "fraud")
    md = get(cluster, namespace, "md", "fraud")
    assert md["status"]["phase"] == "Deploying"
    assert condition(md, "Reconciled")["status"] == "True"
    assert len(get(cluster, namespace, "deployments")["items"]) == 1
    # The decision and "the pass completed" went in one status write, not two.
    assert Counted.writes == 1
