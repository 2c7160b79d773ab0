"""A small, typed facade over the kubernetes client for what the reconciler needs.

Objects are written with server-side apply under one field manager, so applying the
same desired object twice is a no-op and a restarted operator converges instead of
duplicating. Only the status subresource of a ModelDeployment is ever written: the
operator never rewrites a user's spec (that would fight GitOps).
"""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from pitstop.api import resource
from pitstop.rendering import labels

Object = dict[str, Any]
log = logging.getLogger(__name__)


def connect(kubeconfig: str | None = None) -> KubeClient:
    """In a pod, the service account; elsewhere $KUBECONFIG or the given file."""
    api = k8s.ApiClient()
    if kubeconfig is not None:
        api = k8s_config.new_client_from_config(config_file=kubeconfig)
    else:
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()
        api = k8s.ApiClient()
    return KubeClient(api)


class KubeClient:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self._dynamic = DynamicClient(api)
        self._apps = k8s.AppsV1Api(api)
        self._core = k8s.CoreV1Api(api)
        self._custom = k8s.CustomObjectsApi(api)

    @functools.cache  # noqa: B019 - one client per process; resources never change
    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, obj: Object) -> Object:
        """Server-side apply `obj` as Pitstop; returns the object the API holds."""
        res = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        result = res.server_side_apply(
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=labels.FIELD_MANAGER,
            force_conflicts=True,
        )
        return dict(result.to_dict())

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        """The object as the API holds it, or None when it does not exist."""
        res = self._resource(api_version, kind)
        try:
            return dict(res.get(name=name, namespace=namespace).to_dict())
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete in the background (dependents go through garbage collection)."""
        res = self._resource(api_version, kind)
        try:
            res.delete(name=name, namespace=namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Change only the replica count, through the scale subresource.

        Not an apply: an apply that names only spec.replicas would, by server-side
        apply's rules, remove every other field Pitstop applied before.
        """
        try:
            self._apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def list_deployments(self, namespace: str, selector: str) -> list[Object]:
        items = self._apps.list_namespaced_deployment(namespace, label_selector=selector).items
        return [self.api.sanitize_for_serialization(item) for item in items]

    def get_model_deployment(self, namespace: str, name: str) -> Object | None:
        try:
            obj = self._custom.get_namespaced_custom_object(
                resource.GROUP, resource.VERSION, namespace, resource.PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        assert isinstance(obj, dict)
        return obj

    def patch_status(self, namespace: str, name: str, status: Object) -> None:
        """Replace the status wholesale: keys absent from `status` are removed."""
        self._custom.patch_namespaced_custom_object_status(
            resource.GROUP,
            resource.VERSION,
            namespace,
            resource.PLURAL,
            name,
            # A JSON patch (a list body) replaces status as a whole; a merge patch
            # would keep keys of nested objects that the new status no longer has.
            [{"op": "add", "path": "/status", "value": status}],
            _content_type="application/json-patch+json",
        )

    def post_event(self, owner: Object, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the ModelDeployment, as `kubectl describe` shows them."""
        meta = owner["metadata"]
        now = datetime.now(UTC)
        event = k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(
                name=f"{meta['name']}.{uuid.uuid4().hex[:12]}", namespace=meta["namespace"]
            ),
            involved_object=k8s.V1ObjectReference(
                api_version=resource.API_VERSION,
                kind=resource.KIND,
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component="pitstop"),
            reporting_component="pitstop.dev/operator",
            reporting_instance="pitstop",
        )
        try:
            self._core.create_namespaced_event(meta["namespace"], event)
        except ApiException as error:  # an Event is never worth failing a reconcile
            log.warning("could not post event %s on %s: %s", reason, meta["name"], error.reason)
