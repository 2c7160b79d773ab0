"""The facade's calls on the leader-election Lease (`pitstop.leadership`).

A part of `client.KubeClient` (which inherits it): a Lease in the operator's own
namespace, read, created and replaced with a resourceVersion precondition, so two
replicas racing for it see who won.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from pitstop.k8s import permissions, transport
from pitstop.k8s.permissions import uses

Object = dict[str, Any]
LEASE = ("coordination.k8s.io/v1", "Lease")


class LeaseCalls:
    def _resource(self, api_version: str, kind: str) -> Any:
        raise NotImplementedError  # KubeClient's

    @uses(permissions.LEASE.can("get"))
    def get_lease(self, namespace: str, name: str) -> Object | None:
        try:
            lease: Object = self._resource(*LEASE).get(
                name=name, namespace=namespace, serializer=transport.as_parsed
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return lease

    @uses(permissions.LEASE.can("create"))
    def create_lease(self, namespace: str, name: str, spec: Object) -> bool:
        """Create the Lease; False when another replica created it first (409)."""
        try:
            self._resource(*LEASE).create(body=_lease(namespace, name, spec), namespace=namespace)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    @uses(permissions.LEASE.can("update"))
    def update_lease(self, namespace: str, name: str, spec: Object, resource_version: str) -> bool:
        """Replace the Lease's spec if it is still at `resource_version`; False when
        another replica wrote it since (409)."""
        body = _lease(namespace, name, spec, resource_version)
        try:
            self._resource(*LEASE).replace(body=body, name=name, namespace=namespace)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True


def _lease(namespace: str, name: str, spec: Object, resource_version: str | None = None) -> Object:
    meta = {"name": name, "namespace": namespace}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    return {"apiVersion": LEASE[0], "kind": LEASE[1], "metadata": meta, "spec": spec}
