"""What the operator may do in the API, declared next to the code that does it.

Every `KubeClient` method names the (API group, resource, subresource, verb) it uses
with `@uses(...)`. The generic methods (apply, create, get, delete, annotate) take any
object, so they name the kinds they accept and refuse every other kind at run time
(`check_kind`): a new kind fails in the first test that uses it, not as a 403 in a
user's cluster. `KOPF` and `KOPF_NAMESPACED` are what the framework itself reads; the
resources it watches for `handlers` are read from Kopf's registry by the RBAC test
(tests/unit/k8s/test_rbac.py), which renders the chart and checks that it grants all
of this, in the right namespaces, and nothing else.

Nothing here talks to the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pitstop.api import resource

Scope = Literal["watched", "cluster", "own", "build"]
"""Where a permission is needed: in every namespace whose ModelDeployments the operator
handles (`watched`), on cluster-scoped resources (`cluster`), in the operator's own
namespace, the release's (`own`), or in the build namespace (`build`, the chart's
`build.namespace`), where build Jobs run at the Pod Security level their builders need."""

Audience = Literal["operator", "cli"]
"""Who calls a facade method: the operator (its ServiceAccount needs the permission) or
a person's `pitstop promote|abort|retry|undo|decommission|status` (their own credentials
do)."""


@dataclass(frozen=True, order=True)
class Permission:
    group: str  # "" is the core group
    resource: str  # plural, as RBAC rules name it
    verb: str
    subresource: str = ""
    scope: Scope = "watched"

    @property
    def rbac_resource(self) -> str:
        """The resource as an RBAC rule names it: `deployments/scale`."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {self.rbac_resource}{group} ({self.scope})"


@dataclass(frozen=True)
class Kind:
    """A kind of object the facade's generic methods may be handed."""

    api_version: str
    kind: str
    resource: str
    scope: Scope = "watched"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def can(self, *verbs: str, subresource: str = "") -> tuple[Permission, ...]:
        return tuple(
            Permission(self.group, self.resource, verb, subresource, self.scope) for verb in verbs
        )


MODEL_DEPLOYMENT = Kind(resource.API_VERSION, resource.KIND, resource.PLURAL)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SECRET = Kind("v1", "Secret", "secrets")
POD = Kind("v1", "Pod", "pods")
EVENT = Kind("v1", "Event", "events")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
# What a route's Gateway is implemented by, and what that implementation supports.
GATEWAY = Kind("gateway.networking.k8s.io/v1", "Gateway", "gateways")
GATEWAY_CLASS = Kind("gateway.networking.k8s.io/v1", "GatewayClass", "gatewayclasses", "cluster")
VIRTUAL_SERVICE = Kind("networking.istio.io/v1", "VirtualService", "virtualservices")
CRD = Kind(
    "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", "cluster"
)
NAMESPACE = Kind("v1", "Namespace", "namespaces", "cluster")
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases", "own")
# Who am I (`pitstop promote` names its user); granted to every authenticated user by
# the API server's default system:basic-user ClusterRole.
SELF_SUBJECT_REVIEW = Kind(
    "authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", "cluster"
)

# The build namespace: build Jobs (one per attempt), their pods and logs, build records
# (ConfigMaps), the copies of the Secrets a build needs (taken from the ModelDeployment's
# namespace, owned by the attempt's Job), and the claim of a `pvc` model source. Nothing
# else runs there, so user namespaces need no Job permission at all.
JOB = Kind("batch/v1", "Job", "jobs", "build")
# The one Job a ModelDeployment's monitoring starts per retraining episode, in its own
# namespace (spec.monitoring.retrain.job).
RETRAIN_JOB = Kind("batch/v1", "Job", "jobs")
BUILD_POD = Kind("v1", "Pod", "pods", "build")
BUILD_CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps", "build")
BUILD_SECRET = Kind("v1", "Secret", "secrets", "build")
BUILD_CLAIM = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", "build")

# Children carry an owner reference with blockOwnerDeletion; clusters that enforce it
# (the OwnerReferencesPermissionEnforcement admission plugin, on by default in
# OpenShift) require `update` on the owner's finalizers to set one.
OWNER_FINALIZERS = MODEL_DEPLOYMENT.can("update", subresource="finalizers")

# Kopf itself: it lists the CRDs at start and watches them to follow resources that
# appear or go (cluster-scoped, read-only), and posts Events about handler failures on
# the objects it handles.
KOPF = (*CRD.can("list", "watch"), *EVENT.can("create"))
# Watching only some namespaces, Kopf also lists and watches Namespaces (to match its
# namespace patterns; without it, it warns and assumes they exist).
KOPF_NAMESPACED = NAMESPACE.can("list", "watch")

# Granted by the chart before any code uses them, each for a named reason; the RBAC
# test accepts these and nothing else beyond what is declared.
ANTICIPATED = (
    # Scaling with a resourceVersion precondition (read the scale, update it).
    *DEPLOYMENT.can("get", "update", subresource="scale"),
)


@dataclass(frozen=True)
class Uses:
    permissions: frozenset[Permission]
    audience: Audience


F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__pitstop_uses__"


def uses(
    *needed: Permission | Iterable[Permission], audience: Audience = "operator"
) -> Callable[[F], F]:
    """Declare the permissions a facade method uses (single ones or tuples of them)."""
    flat: set[Permission] = set()
    for item in needed:
        flat.update([item] if isinstance(item, Permission) else item)

    def mark(method: F) -> F:
        setattr(method, _ATTRIBUTE, Uses(frozenset(flat), audience))
        return method

    return mark


def declared(method: Callable[..., Any]) -> Uses | None:
    """What `method` declared with `@uses`, or None."""
    found = getattr(method, _ATTRIBUTE, None)
    return found if isinstance(found, Uses) else None


def on(kinds: Iterable[Kind], *verbs: str) -> tuple[Permission, ...]:
    """`verbs` on each of `kinds`."""
    return tuple(p for kind in kinds for p in kind.can(*verbs))


class UndeclaredKind(LookupError):
    """A facade method was handed a kind it does not declare (see `check_kind`)."""


def check_kind(accepted: Iterable[Kind], api_version: str, kind: str) -> None:
    """Refuse a kind the method does not declare: its permissions would be missing from
    the chart. The version does not matter to RBAC, only the group."""
    group = api_version.rpartition("/")[0]
    if not any(k.group == group and k.kind == kind for k in accepted):
        raise UndeclaredKind(
            f"{kind}.{group or 'core'} is not among the kinds this KubeClient method declares;"
            " add it there (operator/pitstop/k8s/permissions.py) and grant it in the chart"
        )


def known_kind(api_version: str, kind: str) -> Kind:
    """The declared kind `kind` of `api_version`'s group: its plural and whether it is
    namespaced, which is all a request's path needs (no API discovery)."""
    group = api_version.rpartition("/")[0]
    for value in list(globals().values()):
        if isinstance(value, Kind) and value.group == group and value.kind == kind:
            return value
    raise UndeclaredKind(f"{kind}.{group or 'core'} is not declared in pitstop.k8s.permissions")
