"""The facade's calls in the build namespace (`build.namespace`): build Jobs' pods and
their logs, build records, copies of the Secrets a build needs, resuming a Job.

A part of `client.KubeClient` (which inherits it), kept apart because the build
namespace is its own RBAC scope: every call here declares a permission there only.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from pitstop.k8s import permissions, transport
from pitstop.k8s.permissions import uses
from pitstop.rendering import labels

Object = dict[str, Any]
log = logging.getLogger(__name__)

BUILD_READ = (permissions.BUILD_CONFIG_MAP, permissions.BUILD_CLAIM)  # records, pvc sources
BUILD_APPLIED = (permissions.BUILD_CONFIG_MAP,)  # build records
# Seconds any call in the build namespace may take.
BUILD_TIMEOUT = 30


class BuildCalls:
    api: k8s.ApiClient
    _core: k8s.CoreV1Api
    _batch: k8s.BatchV1Api

    def _resource(self, api_version: str, kind: str) -> Any:
        raise NotImplementedError  # KubeClient's

    @uses(permissions.BUILD_POD.can("get", subresource="log"))
    def pod_log_tail(self, namespace: str, name: str, container: str, lines: int) -> str | None:
        """The last `lines` lines a container wrote, or None when there is no log to read."""
        try:
            text = self._core.read_namespaced_pod_log(
                name, namespace, container=container, tail_lines=lines, _request_timeout=5
            )
        except (ApiException, TransportError) as error:
            # The container never started, the pod is gone, or its node serves no logs
            # (KWOK's nodes, a node that went away): the caller falls back to the status.
            log.info("no log for %s/%s[%s]: %s", namespace, name, container, error)
            return None
        return str(text) if text else None

    # --- The build namespace (images.resolve) ---------------------------------------
    # Build Jobs run in a namespace of their own, at the Pod Security level their
    # builders need; these methods declare what the operator does there, so the chart
    # grants it there only. (create, annotate and list_jobs handle Jobs, which exist
    # nowhere else.)

    @uses(permissions.BUILD_POD.can("list"))
    def list_build_pods(self, namespace: str, selector: str) -> list[Object]:
        items = self._core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=BUILD_TIMEOUT
        ).items
        return [self.api.sanitize_for_serialization(item) for item in items]

    @uses(permissions.on(BUILD_READ, "get"))
    def get_build_object(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Object | None:
        """`get` in the build namespace: a build record, the claim of a `pvc` source."""
        permissions.check_kind(BUILD_READ, api_version, kind)
        res = self._resource(api_version, kind)
        try:
            found: Object = res.get(name=name, namespace=namespace,
                                   _request_timeout=BUILD_TIMEOUT, serializer=transport.as_parsed)  # fmt: skip
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    @uses(permissions.on(BUILD_APPLIED, "patch", "create"))
    def apply_build_object(self, obj: Object) -> None:
        """`apply` in the build namespace: a build record."""
        permissions.check_kind(BUILD_APPLIED, obj["apiVersion"], obj["kind"])
        res = self._resource(obj["apiVersion"], obj["kind"])
        res.server_side_apply(
            body=obj,
            name=obj["metadata"]["name"],
            namespace=obj["metadata"]["namespace"],
            field_manager=labels.FIELD_MANAGER,
            force_conflicts=True,
            _request_timeout=BUILD_TIMEOUT,
        )

    @uses(permissions.BUILD_SECRET.can("create"))
    def create_secret_copy(self, secret: Object) -> bool:
        """Create a copy of a Secret in the build namespace unless it exists (a copy is
        never updated: it belongs to one build attempt); True when this call created it."""
        permissions.check_kind((permissions.BUILD_SECRET,), secret["apiVersion"], secret["kind"])
        try:
            self._resource("v1", "Secret").create(
                body=secret,
                namespace=secret["metadata"]["namespace"],
                field_manager=labels.FIELD_MANAGER,
                _request_timeout=BUILD_TIMEOUT,
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    @uses(permissions.JOB.can("patch"))
    def resume_job(self, namespace: str, name: str) -> None:
        """Unsuspend a Job (`spec.suspend: false`): its pods may start."""
        self._resource("batch/v1", "Job").patch(
            name=name,
            namespace=namespace,
            body={"spec": {"suspend": False}},
            content_type="application/merge-patch+json",
            _request_timeout=BUILD_TIMEOUT,
        )
