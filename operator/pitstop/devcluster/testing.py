"""What tests hold on to: a running control plane with kubectl, a client and a poller.

Ships beside `cluster` (as httpx ships its MockTransport beside the transport) so the
integration and e2e suites share one handle; the pytest fixtures that create it live in
`tests/integration/conftest.py`. It must not start or stop anything itself.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import dynamic
from kubernetes.dynamic import exceptions as dynamic_errors

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
            lambda: self.get("serviceaccount", "default", namespace=name) is not None,
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

    def get(
        self,
        resource: str,
        name: str | None = None,
        *,
        namespace: str | None = None,
        selector: str | None = None,
    ) -> dict[str, Any] | None:
        """What `kubectl get RESOURCE [NAME] [-n NAMESPACE] [-l SELECTOR] -o json` prints
        (with managedFields), or None where the object or its kind does not exist.

        Tests poll with it several times a second for minutes. A kubectl process costs
        about 80 ms of CPU (Go's start, the kubeconfig, the discovery cache, its own TLS
        handshake with the API server); this keeps one client and one connection pool
        for the cluster's lifetime: a read costs a few ms, on a machine whose two cores
        the system under test needs. RESOURCE is any name kubectl takes for a kind:
        plural, singular or short (`md`, `deployments`, `svc`, `httproute`)."""
        found = self._resource(resource)
        if found is None:
            return None
        try:
            body: dict[str, Any] = found.get(
                name=name, namespace=namespace, label_selector=selector,
                serializer=lambda _client, parsed: parsed, _request_timeout=30,
            )  # fmt: skip
        except dynamic_errors.NotFoundError:
            return None
        if name is None:  # kubectl names each listed item's kind, as a single get does
            for item in body.get("items", []):
                item.setdefault("apiVersion", found.group_version)
                item.setdefault("kind", found.kind)
        return body

    def read(self, *what: str, namespace: str | None = None) -> dict[str, Any] | None:
        """`kubectl get *WHAT [-n NAMESPACE] -o json`, parsed, or None where it fails.
        `KIND [NAME]` and `KIND -l SELECTOR` go through `get`'s kept client; any other
        form (several kinds, `kind/name`, field selectors) through kubectl itself."""
        kind, rest = (what[0], what[1:]) if what else ("", ())
        simple = kind and "," not in kind and "/" not in kind and not kind.startswith("-")
        try:
            if simple and (not rest or (len(rest) == 1 and not rest[0].startswith("-"))):
                return self.get(kind, *rest, namespace=namespace)
            if simple and len(rest) == 2 and rest[0] in ("-l", "--selector"):
                return self.get(kind, namespace=namespace, selector=rest[1])
        except (dynamic_errors.DynamicApiError, urllib3.exceptions.HTTPError):
            return None  # as kubectl fails: refused, unreachable, restarting
        where = ["-n", namespace] if namespace else []
        done = self.kubectl("get", *what, *where, "-o", "json", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def require(self, *what: str, namespace: str | None = None) -> dict[str, Any]:
        """`read` for what must be there: LookupError where it is not (a test waiting for
        an object to go, or to come back, catches that)."""
        found = self.read(*what, namespace=namespace)
        if found is None:
            raise LookupError(f"{' '.join(what)} not found in {namespace or 'the cluster'}")
        return found

    @functools.cached_property
    def _discovery(self) -> tuple[dynamic.DynamicClient, threading.Lock, dict[str, Any]]:
        # One per handle (a session's), its discovery cached beside the cluster's state.
        client = dynamic.DynamicClient(  # type: ignore[no-untyped-call]
            self.api_client(), cache_file=str(self.state_dir / "discovery-cache.json")
        )
        return client, threading.Lock(), {}

    def _resource(self, wanted: str) -> Any:
        client, lock, known = self._discovery
        with lock:
            if wanted not in known:
                found = _named(client.resources.search(), wanted)
                if found is None:  # perhaps a CRD installed since: discover again, once
                    client.resources.invalidate_cache()
                    found = _named(client.resources.search(), wanted)
                if found is None:
                    return None  # not served (yet): look again next time
                known[wanted] = found
            return known[wanted]

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


def _named(resources: list[Any], wanted: str) -> Any:
    """The kind kubectl would take `wanted` for: by plural, singular, short name or
    kind, the core group's first (`events`), then each group's preferred version."""
    lowered = wanted.lower()
    matches = [
        r for r in resources
        if isinstance(r, dynamic.Resource) and r.name and "/" not in r.name
        and not r.kind.endswith("List")
        and lowered in (r.name, r.singular_name, r.kind.lower(), *(r.short_names or ()))
    ]  # fmt: skip
    return min(matches, key=lambda r: (r.group != "", not r.preferred), default=None)


def conftest_module(path: Path, name: str) -> ModuleType:
    """Load another suite's conftest.py by path, so its fixtures can be re-exported
    (pytest shares conftest fixtures only down a folder tree, not across suites)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
