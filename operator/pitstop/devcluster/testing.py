"""What tests hold on to: a running control plane with kubectl, a client and a poller.

Ships beside `cluster` (as httpx ships its MockTransport beside the transport) so the
integration and e2e suites share one handle; the pytest fixtures that create it live in
`tests/integration/conftest.py`. It must not start or stop anything itself.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Literal, TypeVar

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from pitstop.devcluster import cluster

# Not the developer default (127.200.0.0/16): model servers a test harness starts on
# pod IPs must not clash with those of a `pitstop dev up` cluster on the same host.
TEST_POD_CIDR = "127.201.0.0/16"

T = TypeVar("T")
PodSecurityLevel = Literal["privileged", "baseline", "restricted"]


@dataclasses.dataclass(frozen=True)
class DevCluster:
    """A running control plane, as tests see it."""

    info: cluster.ClusterInfo

    @property
    def kubeconfig(self) -> Path:
        return self.info.kubeconfig

    @property
    def bin_dir(self) -> Path:
        return self.info.bin_dir

    @property
    def server(self) -> str:
        return self.info.server

    @property
    def state_dir(self) -> Path:
        return self.info.state_dir

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run our kubectl against this cluster; output is captured as text."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def create_namespace(self, name: str, *, pod_security: PodSecurityLevel) -> None:
        """A namespace (created, or updated if it exists) whose pods must meet a Pod
        Security Standard level, enforced by the API server's PodSecurity admission;
        ready for pods once it returns."""
        labels = {"pod-security.kubernetes.io/enforce": pod_security}
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name, "labels": labels}}  # fmt: skip
        self.kubectl("apply", "-f", "-", input=json.dumps(namespace))
        # Pods are refused until the controller-manager has created the namespace's
        # `default` ServiceAccount.
        self.wait(
            f"ServiceAccount default in {name}",
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name,
                                 check=False).returncode == 0,
        )  # fmt: skip

    def delete_namespace(self, name: str) -> None:
        """Delete a test's namespace without waiting, its ModelDeployments first.

        An operator watching the whole cluster (the next test's) would otherwise go on
        reconciling them while the namespace terminates, and the API server refuses any
        write there (403, NamespaceTerminating), which reads like a missing RBAC rule in
        its log. Without their ModelDeployment, children are left to the namespace."""
        self.kubectl("delete", "modeldeployments.pitstop.dev", "--all", "-n", name,
                     "--ignore-not-found", check=False)  # fmt: skip
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

    def api_client(self) -> k8s_client.ApiClient:
        """A fresh `kubernetes` client for this cluster (close it, or use it in `with`)."""
        # The kubernetes package ships partial annotations; this loader has none.
        api: k8s_client.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return api

    @staticmethod
    def wait(
        what: str, probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.2
    ) -> T:
        """Poll `probe` until it returns something truthy and return that; fail at deadline."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(interval)


def conftest_module(path: Path, name: str) -> ModuleType:
    """Load another suite's conftest.py by path, so its fixtures can be re-exported
    (pytest shares conftest fixtures only down a folder tree, not across suites)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
