"""The chart installed as a user installs it, and the operator's credentials from it.

The tests and the demo install `charts/pitstop` with `helm install` into the local
control plane (its CRDs come with it) and run the operator process, outside the
cluster, with a token of the chart's ServiceAccount: it has exactly the RBAC a user's
install gives it, so a missing rule shows up as a 403 in a test, not in a user's
cluster. Admin credentials stay with what a test sets up itself.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import yaml

from pitstop.devcluster import binaries, testing

CHART = Path(__file__).resolve().parents[3] / "charts" / "pitstop"
TOKEN_DURATION = "24h"  # outlives any test session or demo


@dataclasses.dataclass(frozen=True)
class Release:
    """A `helm install` of the chart: where it lives and whom its RBAC is for."""

    name: str
    namespace: str
    watch_namespaces: tuple[str, ...] = ()
    build_namespace: str = "pitstop-builds"
    """Where its build Jobs run (the chart's build.namespace, created by the chart)."""

    @property
    def service_account(self) -> str:
        # The chart's full name: the release name when it contains "pitstop".
        return self.name

    @property
    def user(self) -> str:
        """The ServiceAccount as RBAC sees it (`kubectl auth can-i --as=...`)."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def helm(
    cluster: testing.DevCluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Our helm against this cluster; output is captured as text."""
    done = subprocess.run(
        [str(cluster.bin_dir / "helm"), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stderr}")
    return done


def template(
    cluster: testing.DevCluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart (no cluster involved)."""
    return helm(cluster, "template", "pitstop", str(CHART),
                "--kube-version", binaries.KUBERNETES_VERSION, *args, check=check)  # fmt: skip


def install(
    cluster: testing.DevCluster,
    name: str,
    namespace: str,
    *,
    watch_namespaces: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
) -> Release:
    """`helm install` (an upgrade if the release exists) into `namespace`, created here at
    the restricted Pod Security level (the operator pod meets it). Watched namespaces
    must exist: their Roles go there. Each release gets a build namespace of its own,
    `<namespace>-builds` (the chart creates it), so releases never share one."""
    cluster.create_namespace(namespace, pod_security="restricted")
    builds = f"{namespace}-builds"
    command = ["upgrade", "--install", name, str(CHART), "--namespace", namespace,
               "--set", f"build.namespace={builds}", *args]  # fmt: skip
    if watch_namespaces:
        command += ["--set", "watchNamespaces={" + ",".join(watch_namespaces) + "}"]
    helm(cluster, *command)
    return Release(name, namespace, watch_namespaces, builds)


def uninstall(cluster: testing.DevCluster, release: Release) -> None:
    helm(cluster, "uninstall", release.name, "--namespace", release.namespace, check=False)
    cluster.kubectl("delete", "namespace", release.namespace, "--wait=false",
                    "--ignore-not-found")  # fmt: skip


def token_kubeconfig(cluster: testing.DevCluster, token: str, path: Path) -> Path:
    """The admin kubeconfig's cluster, with a bearer token as its only user."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "pitstop-operator", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "pitstop-operator"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def operator_kubeconfig(
    cluster: testing.DevCluster,
    path: Path,
    *,
    namespace: str,
    service_account: str,
) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a token from the TokenRequest
    API, as `kubectl create token` gets it), for the operator process to run with."""
    token = cluster.kubectl(
        "create", "token", service_account, "-n", namespace, f"--duration={TOKEN_DURATION}"
    ).stdout.strip()
    return token_kubeconfig(cluster, token, path)


def release_kubeconfig(cluster: testing.DevCluster, release: Release, path: Path) -> Path:
    """`operator_kubeconfig` for the ServiceAccount of `release`."""
    return operator_kubeconfig(
        cluster, path, namespace=release.namespace, service_account=release.service_account
    )


def can_i(cluster: testing.DevCluster, user: str, verb: str, what: str, namespace: str) -> bool:
    """`kubectl auth can-i VERB WHAT --as=USER -n NAMESPACE`; WHAT may name a
    subresource (`deployments.apps/scale`)."""
    resource, _, subresource = what.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={user}", "-n", namespace]
    if subresource:
        args.append(f"--subresource={subresource}")
    answer = cluster.kubectl(*args, check=False).stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl auth can-i {' '.join(args)}: {answer!r}"
    return answer == "yes"
