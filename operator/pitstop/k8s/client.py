"""A small, typed facade over the kubernetes client for what the reconciler needs.

Objects are written with server-side apply under one field manager, so applying the
same desired object twice is a no-op and a restarted operator converges instead of
duplicating. Only the status subresource of a ModelDeployment is ever written: the
operator never rewrites a user's spec (that would fight GitOps).

Every method declares the API permissions it uses (`permissions.uses`); the generic
ones also name the kinds they accept and refuse others, so the chart's RBAC, checked
against these declarations by tests/unit/k8s/test_rbac.py, covers every call.

Every request has a timeout, enforced below the generated client, so no
call (discovery included) can hang a reconcile; a client may also be *fenced* (see
`transport`).
"""

from __future__ import annotations

import base64
import functools
import logging
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from pitstop.api import resource
from pitstop.k8s import build_calls, errors, events, lease_calls, permissions, transport
from pitstop.k8s.outbox import Letter, Outbox
from pitstop.k8s.permissions import uses
from pitstop.k8s.seen import Applied, Seen, key_of, parse_selector, watched
from pitstop.rendering import labels

Object = dict[str, Any]
log = logging.getLogger(__name__)

# The kinds each generic method accepts (see permissions.check_kind).
APPLIED = (
    permissions.DEPLOYMENT,  # a revision's model servers
    permissions.SERVICE,  # the entry Service and one per revision
    permissions.CONFIG_MAP,  # the mirror file, build records
    permissions.HTTP_ROUTE,  # gateway-api traffic
    permissions.VIRTUAL_SERVICE,  # istio traffic
)
CREATED = (permissions.JOB,)  # build attempts
READ = (
    permissions.SERVICE,
    permissions.CONFIG_MAP,
    permissions.SECRET,  # a ModelDeployment's API keys (serving.auth)
    permissions.HTTP_ROUTE,
    permissions.GATEWAY,  # a route's parent, for its GatewayClass
    permissions.GATEWAY_CLASS,  # what its implementation supports (mirroring)
    permissions.VIRTUAL_SERVICE,
)
DELETED = (permissions.DEPLOYMENT, permissions.SERVICE)  # revisions beyond the history
ANNOTATED = (permissions.JOB,)  # a failed build, once reported
COMPONENT = "pitstop"  # source.component of the Events Pitstop posts
DEFAULT_CALLERS = 10  # a CLI or a test: a thread or a few


def connect(
    kubeconfig: str | None = None,
    *,
    timeout: float = transport.TIMEOUT_SECONDS,
    write_timeout: float | None = None,
    fence: Callable[[], None] | None = None,
    identity: str | None = None,
    seen: Seen | None = None,
    outbox: Outbox | None = None,
    callers: int = DEFAULT_CALLERS,
) -> KubeClient:
    """In a pod, the service account; elsewhere $KUBECONFIG or the given file.

    `callers`: how many threads may call at once. The pool keeps that many connections
    open: the kubernetes client's default (5 per core: 10 on 2 cores) is fewer than the
    operator's reconcile threads and Event senders together, and each connection it
    could not keep was closed and opened again, a TLS handshake on both sides (166
    times while 300 ModelDeployments came up with 32 reconciles at once)."""
    configuration = k8s.Configuration()
    if kubeconfig is not None:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = callers
    return KubeClient(
        k8s.ApiClient(configuration), timeout=timeout, write_timeout=write_timeout, fence=fence,
        identity=identity, seen=seen, outbox=outbox,
    )  # fmt: skip


def current_namespace() -> str:
    """The namespace of the kubeconfig's current context (in a pod: its own)."""
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as own:
            return own.read().strip()
    except OSError:
        pass
    try:
        _, active = k8s_config.list_kube_config_contexts()
    except k8s_config.ConfigException:
        return "default"
    return str(active.get("context", {}).get("namespace") or "default")


class KubeClient(build_calls.BuildCalls, lease_calls.LeaseCalls):
    """The API facade. `timeout` bounds every call, `write_timeout` (default: the same)
    writes, which `fence`, if given, may refuse; `identity` names this replica on its
    Events, which `outbox`, if given, posts off the caller's thread."""

    def __init__(
        self,
        api: k8s.ApiClient,
        *,
        timeout: float = transport.TIMEOUT_SECONDS,
        write_timeout: float | None = None,
        fence: Callable[[], None] | None = None,
        identity: str | None = None,
        seen: Seen | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        """`seen`: the watches' view of the ModelDeployments and their children (the
        operator's); with it, an apply that would change nothing is skipped, and reads of
        those objects are served from memory once the view is open (`pitstop.k8s.seen`)."""
        self.api = api
        self.seen = seen
        self._applied = Applied()
        transport.bound(api, timeout, write_timeout or timeout, fence)
        self.identity = identity or socket.gethostname()
        self._dynamic = DynamicClient(api)
        self._apps = k8s.AppsV1Api(api)
        self._batch = k8s.BatchV1Api(api)
        self._core = k8s.CoreV1Api(api)
        self._custom = k8s.CustomObjectsApi(api)
        self._events = events.Recorder()
        self.outbox = outbox

    @functools.cache  # noqa: B019 - one client per process; resources never change
    def _resource(self, api_version: str, kind: str) -> Any:
        """The dynamic client's handle on a kind, built from what `permissions` declares
        about it. Not the client's own lookup: that discovers lazily and without a lock,
        so the first reconciles, running at once, each walked every API group (about 25
        GETs of large documents per reconcile thread while the API server was busiest)."""
        known = permissions.known_kind(api_version, kind)
        group, _, version = api_version.rpartition("/")
        return Resource(
            prefix="apis" if group else "api", group=group, api_version=version, kind=kind,
            namespaced=known.scope != "cluster", name=known.resource, client=self._dynamic,
        )  # fmt: skip

    # An apply that finds no object creates it, which the API server authorizes as a
    # create too.
    @uses(permissions.on(APPLIED, "patch", "create"), permissions.OWNER_FINALIZERS)
    def apply(self, obj: Object) -> Object:
        """Server-side apply `obj` as Pitstop; returns the object the API holds."""
        permissions.check_kind(APPLIED, obj["apiVersion"], obj["kind"])
        if self.seen is not None and self._applied.unchanged(obj, self.seen):
            return obj  # nobody wrote it since our own same apply: nothing to send
        res = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        result: Object = res.server_side_apply(
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=labels.FIELD_MANAGER,
            force_conflicts=True,
            serializer=transport.as_parsed,
        )  # fmt: skip
        self._applied.wrote(obj, result)
        self._wrote_through(result)
        return result

    def _wrote_through(self, result: Object) -> None:
        """Hold what a write left, so the next read sees it before the watch does."""
        if self.seen is not None and watched(result):
            self.seen.record(result)

    def _held(self) -> Seen | None:
        """The watches' view, when reads may be served from it."""
        return self.seen if self.seen is not None and self.seen.serving else None

    @uses()  # no request: what this process applied
    def wrote(self, obj: Object) -> bool:
        """Whether this process has applied `obj`'s object (and not deleted it since)."""
        return self._applied.has(key_of(obj))

    @uses(permissions.on(CREATED, "create"), permissions.OWNER_FINALIZERS)
    def create(self, obj: Object) -> bool:
        """Create `obj` as Pitstop unless it exists; True when this call created it.

        For objects whose first writer must win (a build Job shared by several
        ModelDeployments): an apply would rewrite the owner and labels of a Job that
        another ModelDeployment started.
        """
        permissions.check_kind(CREATED, obj["apiVersion"], obj["kind"])
        res = self._resource(obj["apiVersion"], obj["kind"])
        try:
            res.create(
                body=obj,
                namespace=obj["metadata"].get("namespace"),
                field_manager=labels.FIELD_MANAGER,
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    @uses(permissions.RETRAIN_JOB.can("create"), permissions.OWNER_FINALIZERS)
    def create_retrain_job(self, job: Object) -> bool:
        """Create a monitoring episode's retraining Job; False when it exists already."""
        permissions.check_kind((permissions.RETRAIN_JOB,), job["apiVersion"], job["kind"])
        try:
            self._resource("batch/v1", "Job").create(
                body=job, namespace=job["metadata"]["namespace"],
                field_manager=labels.FIELD_MANAGER,
            )  # fmt: skip
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    @uses(permissions.on(READ, "get"))
    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        """The object as the API holds it, or None when it does not exist."""
        permissions.check_kind(READ, api_version, kind)
        res = self._resource(api_version, kind)
        try:
            found: Object = res.get(name=name, namespace=namespace, serializer=transport.as_parsed)
            return found
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    @uses(permissions.on(READ, "get"))
    def child(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        """A Service or ConfigMap Pitstop made for a ModelDeployment (it carries Pitstop's
        labels), as the watch shows it; None when the watch shows none. Without an open
        view, as the API holds it."""
        held = self._held()
        if held is None:
            return self.get(api_version, kind, namespace, name)
        permissions.check_kind(READ, api_version, kind)
        return held.body((api_version, kind, namespace, name))

    @uses(permissions.on(DELETED, "delete"))
    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete in the background (dependents go through garbage collection)."""
        permissions.check_kind(DELETED, api_version, kind)
        self._applied.drop((api_version, kind, namespace, name))
        if self.seen is not None:
            self.seen.drop((api_version, kind, namespace, name))
        res = self._resource(api_version, kind)
        try:
            res.delete(name=name, namespace=namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    @uses(permissions.DEPLOYMENT.can("patch", subresource="scale"))
    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Change only the replica count, through the scale subresource.

        Not an apply: an apply that names only spec.replicas would, by server-side
        apply's rules, remove every other field Pitstop applied before.
        """
        try:
            scale = self._apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}
            )
        except ApiException as error:
            if error.status != 404:
                raise
            return
        held = self.seen.body(("apps/v1", "Deployment", namespace, name)) if self.seen else None
        if held is not None and self.seen is not None and scale.metadata is not None:
            # The answer is a Scale, not the Deployment: hold the Deployment as the scale
            # left it. Its generation moved by an unknown step, so none is held (an apply
            # is then never skipped as unchanged until the watch shows it).
            held["spec"]["replicas"] = replicas
            held["metadata"]["resourceVersion"] = scale.metadata.resource_version
            held["metadata"].pop("generation", None)
            self.seen.record(held)

    @uses(permissions.DEPLOYMENT.can("list"))
    def list_deployments(self, namespace: str, selector: str) -> list[Object]:
        held, terms = self._held(), parse_selector(selector)
        if held is not None and terms is not None and labels.DEPLOYMENT in terms:
            return held.select("apps/v1", "Deployment", namespace, terms)
        items = self._apps.list_namespaced_deployment(namespace, label_selector=selector).items
        return [self.api.sanitize_for_serialization(item) for item in items]

    @uses(permissions.JOB.can("list"))
    def list_jobs(self, namespace: str, selector: str) -> list[Object]:
        items = self._batch.list_namespaced_job(namespace, label_selector=selector).items
        return [self.api.sanitize_for_serialization(item) for item in items]

    @uses(permissions.POD.can("list"))
    def list_pods(self, namespace: str, selector: str) -> list[Object]:
        items = self._core.list_namespaced_pod(namespace, label_selector=selector).items
        return [self.api.sanitize_for_serialization(item) for item in items]

    @uses(permissions.SECRET.can("get"))
    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's entries, decoded; None when it does not exist."""
        try:
            secret = self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return {
            key: base64.b64decode(value).decode(errors="replace")
            for key, value in (secret.data or {}).items()
        }

    @uses(permissions.CONFIG_MAP.can("get"), audience="cli")
    def read_config_map(self, namespace: str, name: str) -> Object | None:
        """A ConfigMap for a person's `pitstop history` (their own credentials); raises
        `errors.Forbidden` when they may not read it."""
        try:
            found = self._core.read_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            if error.status == 403:
                raise errors.Forbidden(
                    f"reading ConfigMap {namespace}/{name} is forbidden"
                ) from None
            raise
        return dict(self.api.sanitize_for_serialization(found))

    @uses(permissions.on(ANNOTATED, "patch"))
    def annotate(
        self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str]
    ) -> None:
        """Merge `annotations` into an object's metadata, leaving every other field alone.

        Not an apply: applying only metadata under Pitstop's field manager would remove
        the rest of what Pitstop applied to the object.
        """
        permissions.check_kind(ANNOTATED, api_version, kind)
        self._merge_annotations(api_version, kind, namespace, name, annotations)

    @uses(permissions.MODEL_DEPLOYMENT.can("patch"), audience="cli")
    def annotate_model_deployment(
        self, namespace: str, name: str, annotations: dict[str, str]
    ) -> None:
        """`annotate` for a person's manual gate (`pitstop promote`, ...): the operator
        itself never writes a ModelDeployment, only its status."""
        self._merge_annotations(resource.API_VERSION, resource.KIND, namespace, name, annotations)

    @uses(permissions.MODEL_DEPLOYMENT.can("delete"), audience="cli")
    def delete_model_deployment(self, namespace: str, name: str) -> None:
        """Delete a ModelDeployment for a person's `pitstop decommission` (their own
        credentials): the operator never deletes one. Its children go with it through
        garbage collection; absent already is fine."""
        try:
            self._custom.delete_namespaced_custom_object(
                resource.GROUP, resource.VERSION, namespace, resource.PLURAL, name,
                propagation_policy="Background",
            )  # fmt: skip
        except ApiException as error:
            if error.status != 404:
                raise

    @uses(permissions.SELF_SUBJECT_REVIEW.can("create"), audience="cli")
    def whoami(self) -> str:
        """The user the API server authenticates these credentials as (a SelfSubjectReview,
        which every authenticated user may create), for a manual gate's requested-by."""
        review = k8s.AuthenticationV1Api(self.api).create_self_subject_review(
            k8s.V1SelfSubjectReview(
                api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
            )
        )
        user = review.status.user_info if review.status is not None else None
        if user is None or not user.username:
            raise RuntimeError("the API server did not say who these credentials are")
        return str(user.username)

    def _merge_annotations(
        self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str]
    ) -> None:
        res = self._resource(api_version, kind)
        try:
            res.patch(
                name=name,
                namespace=namespace,
                body={"metadata": {"annotations": annotations}},
                content_type="application/merge-patch+json",
            )
        except ApiException as error:
            if error.status != 404:
                raise

    @uses(permissions.MODEL_DEPLOYMENT.can("get"))
    def get_model_deployment(self, namespace: str, name: str) -> Object | None:
        """As the watch shows it when the view is open and holds it; else a GET."""
        held = self._held()
        key = (resource.API_VERSION, resource.KIND, namespace, name)
        found = held.body(key) if held is not None else None
        if found is not None:
            return found
        try:
            obj = self._custom.get_namespaced_custom_object(
                resource.GROUP, resource.VERSION, namespace, resource.PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        assert isinstance(obj, dict)
        self._wrote_through(obj)  # newer than what the watch has shown, or the same
        return obj

    @uses(permissions.MODEL_DEPLOYMENT.can("patch", subresource="status"))
    def patch_status(self, namespace: str, name: str, status: Object, resource_version: str) -> str:
        """Replace the status wholesale, if the object is still at `resource_version`;
        returns its new resourceVersion. Raises `Conflict` if anything wrote the object
        since (a user, another replica): a status decided from a stale object is never
        written over a newer one."""
        try:
            obj = self._custom.patch_namespaced_custom_object_status(
                resource.GROUP,
                resource.VERSION,
                namespace,
                resource.PLURAL,
                name,
                # A JSON patch (a list body) replaces status as a whole; a merge patch
                # would keep keys of nested objects that the new status no longer has.
                # Setting metadata.resourceVersion makes it a precondition: the API
                # server answers 409 when the object has moved on.
                [
                    {
                        "op": "replace",
                        "path": "/metadata/resourceVersion",
                        "value": resource_version,
                    },
                    {"op": "add", "path": "/status", "value": status},
                ],
                _content_type="application/json-patch+json",
            )
        except ApiException as error:
            if error.status == 409:
                if self.seen is not None:  # read it afresh next time
                    self.seen.drop((resource.API_VERSION, resource.KIND, namespace, name))
                raise errors.Conflict(f"{namespace}/{name} changed since it was read") from error
            raise
        assert isinstance(obj, dict)
        self._wrote_through(obj)
        return str(obj["metadata"]["resourceVersion"])

    @uses(permissions.EVENT.can("create", "patch"))
    def post_event(self, owner: Object, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the ModelDeployment, as `kubectl describe` shows them; an
        occurrence identical to one already posted counts on it (see `events`). With an
        outbox, queued and posted from its thread: the caller never waits for it."""
        key = events.key(COMPONENT, owner, type_, reason, message)
        meta = owner["metadata"]
        # Only what the Event names, read now: the caller's object may change meanwhile.
        ref = {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        if self.outbox is None:
            self._post_event(key, ref)
        else:
            about = f"{key.namespace}/{key.name}"
            self.outbox.put(Letter(lambda: self._post_event(key, ref),
                                   f"Event {reason} on {about}", about))  # fmt: skip

    def _post_event(self, key: events.Key, ref: dict[str, str | None]) -> None:
        try:
            previous = self._events.seen(key)
            if previous is not None and self._count_event(key, previous):
                return
            self._create_event(key, ref)
        except ApiException as error:  # an Event is never worth failing a reconcile
            log.warning("could not post event %s on %s: %s", key.reason, key.name, error.reason)

    def _count_event(self, key: events.Key, previous: events.Posted) -> bool:
        """One more occurrence on `previous`; False when that Event has expired."""
        count = previous.count + 1
        try:
            self._core.patch_namespaced_event(
                previous.name,
                key.namespace,
                {"count": count, "lastTimestamp": datetime.now(UTC).isoformat()},
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self._events.forget(key)
            return False
        self._events.posted(key, events.Posted(previous.name, count, previous.first))
        return True

    def _create_event(self, key: events.Key, ref: dict[str, str | None]) -> None:
        now = datetime.now(UTC)
        name = f"{key.name}.{uuid.uuid4().hex[:12]}"
        event = k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(name=name, namespace=key.namespace),
            involved_object=k8s.V1ObjectReference(
                api_version=resource.API_VERSION,
                kind=resource.KIND,
                name=key.name,
                namespace=key.namespace,
                uid=ref["uid"],
                resource_version=ref["resourceVersion"],
            ),
            type=key.type,
            reason=key.reason,
            message=key.message,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component=COMPONENT),
            reporting_component="pitstop.dev/operator",
            reporting_instance=self.identity,  # which replica said it
        )
        self._core.create_namespaced_event(key.namespace, event)
        self._events.posted(key, events.Posted(name, 1, now))

    # --- Leader election (pitstop.leadership): the Lease in the operator's namespace.
    # Through the dynamic client, which sends the times as written: the generated one
    # re-serialises them without the microseconds a Lease's MicroTime must have.
