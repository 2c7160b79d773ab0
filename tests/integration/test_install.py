"""Both install paths, applied to the real API server.

`manifests/` (kubectl apply -k) is rendered from the chart, so the two paths install
the same objects; the operator then runs under the manifests' own ServiceAccount to
prove its RBAC is enough (and, being hand-listed, no more than it needs).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "pitstop"
KUBE_VERSION = "v1.36.3"


def helm(
    cluster: testing.DevCluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cluster.bin_dir / "helm"), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def template(
    cluster: testing.DevCluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return helm(cluster, "template", "pitstop", str(CHART), "--kube-version", KUBE_VERSION, *args,
                check=check)  # fmt: skip


def test_manifests_are_the_rendered_chart(cluster: testing.DevCluster) -> None:
    """Run `make manifests` after changing the chart when this fails."""
    rendered = template(cluster, "--namespace", "pitstop-system", "--skip-crds").stdout
    committed = (REPO / "manifests" / "operator.yaml").read_text()
    assert committed.split("\n", 1)[1] == rendered


def test_helm_lint_is_clean(cluster: testing.DevCluster) -> None:
    done = helm(cluster, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION)
    assert "0 chart(s) failed" in done.stdout


def test_chart_objects_are_accepted_by_the_api_server(
    cluster: testing.DevCluster, crd: str, namespace: str
) -> None:
    rendered = template(
        cluster, "--namespace", namespace, "--set", "watchNamespaces={ml,fraud}",
        "--set", "serviceAccount.annotations.team=ml",
    ).stdout  # fmt: skip
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", "-o", "name", input=rendered)
    assert set(done.stdout.split()) == {
        "serviceaccount/pitstop", "clusterrole.rbac.authorization.k8s.io/pitstop",
        "clusterrolebinding.rbac.authorization.k8s.io/pitstop", "deployment.apps/pitstop",
    }  # fmt: skip
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml" in args
    assert "--namespace=fraud" in args


def test_values_schema_refuses_a_bad_value(cluster: testing.DevCluster) -> None:
    done = template(cluster, "--set", "image.pullPolicy=Sometimes", check=False)
    assert done.returncode != 0
    assert "pullPolicy" in done.stderr


def token_kubeconfig(cluster: testing.DevCluster, token: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"] = [{"name": "pitstop-operator", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "pitstop-operator"
    path.write_text(yaml.safe_dump(admin))
    return path


def test_kubectl_apply_k_installs_an_operator_that_works_under_its_own_rbac(
    cluster: testing.DevCluster, crd: str, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("apply", "--server-side", "-k", str(REPO / "manifests"))
    try:
        # The restricted Pod Security Standard of pitstop-system admitted the pod.
        cluster.wait(
            "operator pod",
            lambda: json.loads(cluster.kubectl(
                "get", "pods", "-n", "pitstop-system", "-l", "app.kubernetes.io/name=pitstop",
                "-o", "json").stdout)["items"],
        )  # fmt: skip
        token = cluster.kubectl("create", "token", "pitstop", "-n", "pitstop-system").stdout.strip()
        kubeconfig = token_kubeconfig(cluster, token, tmp_path / "operator.kubeconfig")
        operator = OperatorProcess(kubeconfig, tmp_path / "operator.log")
        operator.start()
        try:
            sample = REPO / "manifests" / "samples" / "fraud.yaml"
            cluster.kubectl("apply", "-n", namespace, "-f", str(sample))

            def healthy() -> bool:
                obj = json.loads(
                    cluster.kubectl("get", "md", "fraud", "-n", namespace, "-o", "json").stdout
                )
                return obj.get("status", {}).get("phase") == "Healthy"

            cluster.wait("fraud Healthy under the operator's own RBAC", healthy, timeout=90)
            assert "Forbidden" not in operator.log()
            assert "forbidden" not in operator.log()
        finally:
            operator.stop()
    finally:
        cluster.kubectl("delete", "-f", str(REPO / "manifests" / "operator.yaml"), "--wait=false")
        cluster.kubectl("delete", "namespace", "pitstop-system", "--wait=false")
