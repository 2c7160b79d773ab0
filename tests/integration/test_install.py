"""Both install paths, applied to the real API server, and what each lets the operator do.

`manifests/` (kubectl apply -k) is rendered from the chart, so the two paths install
the same objects. Every other test runs the operator on the session's `helm install`
(cluster-wide mode); here the operator also runs under the manifests' ServiceAccount,
and under a namespaced install, whose RBAC `kubectl auth can-i` shows to stop at its
namespaces.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pitstop.devcluster import binaries, install, testing
from pitstop.devcluster.operator_process import Election, OperatorProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = install.CHART
KUBE_VERSION = binaries.KUBERNETES_VERSION
SAMPLE = REPO / "manifests" / "samples" / "fraud.yaml"
helm = install.helm
template = install.template


def test_manifests_are_the_rendered_chart(cluster: testing.DevCluster) -> None:
    """Run `make manifests` after changing the chart when this fails."""
    rendered = template(cluster, "--namespace", "pitstop-system", "--skip-crds").stdout
    committed = (REPO / "manifests" / "operator.yaml").read_text()
    assert committed.split("\n", 1)[1] == rendered


def test_helm_lint_is_clean(cluster: testing.DevCluster) -> None:
    for values in ([], ["--set", "watchNamespaces={ml,fraud}"]):
        done = helm(cluster, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION,
                    *values)  # fmt: skip
        assert "0 chart(s) failed" in done.stdout


def test_chart_objects_are_accepted_by_the_api_server(
    cluster: testing.DevCluster, crd: str, namespace: str
) -> None:
    # The build namespace must exist for a server-side dry run of its Role: the test's.
    rendered = template(
        cluster, "--namespace", namespace, "--set", f"watchNamespaces={{{namespace}}}",
        "--set", "serviceAccount.annotations.team=ml", "--set", f"build.namespace={namespace}",
    ).stdout  # fmt: skip
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", "-o", "name", input=rendered)
    rbac = "rbac.authorization.k8s.io"
    assert sorted(done.stdout.split()) == sorted([
        "serviceaccount/pitstop", f"clusterrole.{rbac}/pitstop",
        f"clusterrolebinding.{rbac}/pitstop", f"role.{rbac}/pitstop",
        f"rolebinding.{rbac}/pitstop", f"role.{rbac}/pitstop-leader-election",
        f"rolebinding.{rbac}/pitstop-leader-election", "deployment.apps/pitstop",
        f"namespace/{namespace}", f"role.{rbac}/pitstop-builds",
        f"rolebinding.{rbac}/pitstop-builds", "poddisruptionbudget.policy/pitstop",
        "service/pitstop-metrics",
        "validatingadmissionpolicy.admissionregistration.k8s.io/pitstop-requests",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/pitstop-requests",
    ])  # fmt: skip
    objects = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    deployment = objects["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert f"--namespace={namespace}" in args
    # Two replicas, one leader on the release's Lease, each named after its pod.
    assert deployment["spec"]["replicas"] == 2
    assert {"--leader-elect", "--lease-name=pitstop"} <= set(args)
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for e in pod["containers"][0]["env"]}  # fmt: skip
    assert (env["POD_NAME"], env["POD_NAMESPACE"]) == ("metadata.name", "metadata.namespace")
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    spread = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spread[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_values_that_would_let_two_replicas_act_are_refused(cluster: testing.DevCluster) -> None:
    done = template(cluster, "--set", "leaderElection.enabled=false", check=False)
    assert done.returncode != 0
    assert "needs leaderElection.enabled" in done.stderr
    single = template(cluster, "--set", "replicas=1", "--set", "leaderElection.enabled=false")
    assert "PodDisruptionBudget" not in single.stdout  # it would block every drain


def test_values_schema_refuses_a_bad_value(cluster: testing.DevCluster) -> None:
    done = template(cluster, "--set", "image.pullPolicy=Sometimes", check=False)
    assert done.returncode != 0
    assert "pullPolicy" in done.stderr


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
        kubeconfig = install.operator_kubeconfig(
            cluster, tmp_path / "operator.kubeconfig", namespace="pitstop-system",
            service_account="pitstop",
        )  # fmt: skip
        # As the manifests run it: leader election on the Lease in pitstop-system, and
        # `python -m pitstop run` from a cold interpreter, as the image's entry point.
        operator = OperatorProcess(
            kubeconfig, tmp_path / "operator.log",
            election=Election("pitstop-system", name="pitstop"), identity="pitstop-0",
            warm=False,
        )  # fmt: skip
        operator.start()
        try:
            cluster.kubectl("apply", "-n", namespace, "-f", str(SAMPLE))
            wait_phase(cluster, namespace, "Healthy")
        finally:
            operator.stop()
        operator.assert_not_refused()
    finally:
        cluster.kubectl("delete", "-f", str(REPO / "manifests" / "operator.yaml"), "--wait=false")
        cluster.kubectl("delete", "namespace", "pitstop-system", "--wait=false")


def phase(cluster: testing.DevCluster, namespace: str, name: str = "fraud") -> str | None:
    obj = json.loads(cluster.kubectl("get", "md", name, "-n", namespace, "-o", "json").stdout)
    found = (obj.get("status") or {}).get("phase")
    return str(found) if found else None


def wait_phase(cluster: testing.DevCluster, namespace: str, wanted: str) -> None:
    cluster.wait(
        f"fraud {wanted} in {namespace} under the operator's own RBAC",
        lambda: phase(cluster, namespace) == wanted,
        timeout=90,
    )


# What the operator must be able to do wherever it handles ModelDeployments, and nowhere
# else when installed for some namespaces.
WRITES = [
    ("create", "deployments.apps"),
    ("patch", "deployments.apps/scale"),
    ("get", "secrets"),
    ("patch", "modeldeployments.pitstop.dev/status"),
    # The one retraining Job a monitoring episode starts, from the user's own template.
    ("create", "jobs.batch"),
]
# What builds need, granted in the build namespace only, in both modes: no build Job
# runs in a user's namespace, no Secret is copied there (nor to kube-system).
BUILDS = [
    ("create", "secrets"),
    ("get", "pods/log"),
]


def assert_builds_only_in(
    cluster: testing.DevCluster, release: install.Release, *elsewhere: str
) -> None:
    for verb, what in BUILDS:
        assert install.can_i(cluster, release.user, verb, what, release.build_namespace), what
        for where in elsewhere:
            assert not install.can_i(cluster, release.user, verb, what, where), (what, where)


def test_cluster_wide_install_may_do_it_in_any_namespace(
    cluster: testing.DevCluster, release: install.Release, namespace: str
) -> None:
    for verb, what in WRITES:
        assert install.can_i(cluster, release.user, verb, what, namespace), (verb, what)
        assert install.can_i(cluster, release.user, verb, what, "kube-system"), (verb, what)
    # The operator writes only a ModelDeployment's status, never its spec.
    assert not install.can_i(cluster, release.user, "patch", "modeldeployments.pitstop.dev",
                             namespace)  # fmt: skip
    assert_builds_only_in(cluster, release, namespace, "kube-system", release.namespace)


@pytest.fixture
def watched(cluster: testing.DevCluster) -> Iterator[tuple[str, str, str]]:
    """Two namespaces a namespaced install watches, and one it does not."""
    names = tuple(f"t-{uuid.uuid4().hex[:10]}" for _ in range(3))
    for name in names:
        cluster.create_namespace(name, pod_security="restricted")
    try:
        yield names[0], names[1], names[2]
    finally:
        for name in names:
            cluster.delete_namespace(name)


def test_namespaced_install_works_in_its_namespaces_and_may_do_nothing_elsewhere(
    cluster: testing.DevCluster, crd: str, watched: tuple[str, str, str], tmp_path: Path
) -> None:
    first, second, outside = watched
    name = f"pitstop-{uuid.uuid4().hex[:6]}"
    release = install.install(cluster, name, name, watch_namespaces=(first, second),
                              args=("--skip-crds",))  # fmt: skip
    try:
        for verb, what in WRITES:
            for inside in (first, second):
                assert install.can_i(cluster, release.user, verb, what, inside), (verb, what)
            for elsewhere in (outside, "kube-system", release.namespace):
                assert not install.can_i(cluster, release.user, verb, what, elsewhere), (
                    verb, what, elsewhere,
                )  # fmt: skip
        assert_builds_only_in(cluster, release, first, second, outside, "kube-system")
        kubeconfig = install.release_kubeconfig(cluster, release, tmp_path / "kubeconfig")
        operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", (first, second))
        operator.start()
        try:
            for where in (outside, second):
                cluster.kubectl("apply", "-n", where, "-f", str(SAMPLE))
            wait_phase(cluster, second, "Healthy")
            # The operator leaves the unwatched namespace alone (a sample applied
            # before the watched one, so it had every chance).
            assert phase(cluster, outside) is None
            assert cluster.kubectl("get", "deployments", "-n", outside, "-o", "name").stdout == ""
        finally:
            operator.stop()
        operator.assert_not_refused()
    finally:
        install.uninstall(cluster, release)
