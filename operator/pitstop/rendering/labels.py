"""Names and labels of the objects Pitstop creates for a ModelDeployment.

Every child carries `pitstop.dev/*` labels, so the operator finds its objects by label
(never by listing everything) and users can `kubectl get all -l pitstop.dev/...`.
"""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
DEPLOYMENT = "pitstop.dev/model-deployment"
REVISION = "pitstop.dev/revision"
MODEL = "pitstop.dev/model"
MODEL_VERSION = "pitstop.dev/model-version"
ROLE = "pitstop.dev/role"

FIELD_MANAGER = "pitstop"
SERVING_PORT = 3000
SERVICE_PORT = 80


def revision_name(deployment: str, revision: str) -> str:
    """Name of a revision's Deployment and Service: `<name>-<revision>`."""
    return f"{deployment}-{revision}"


def entry_name(deployment: str) -> str:
    """Name of the stable entry Service applications call: the ModelDeployment's name."""
    return deployment


def owner_selector(deployment: str) -> str:
    """Label selector for everything Pitstop made for one ModelDeployment."""
    return f"{DEPLOYMENT}={deployment},{MANAGED_BY}=pitstop"


def base(deployment: str) -> dict[str, str]:
    return {MANAGED_BY: "pitstop", DEPLOYMENT: deployment}


def for_revision(deployment: str, revision: str, model: str, version: str) -> dict[str, str]:
    return {**base(deployment), REVISION: revision, MODEL: model, MODEL_VERSION: version}


# The revision label value no pod carries (revisions are ten hex digits): a Service
# selecting it selects nothing, as a decommissioned ModelDeployment's entry Service does.
NO_REVISION = "none"


def pod_selector(deployment: str, revision: str | None) -> dict[str, str]:
    """Selects one revision's pods (or all revisions' with None). Kept minimal: a
    Deployment's selector is immutable."""
    if revision is None:
        return {DEPLOYMENT: deployment}
    return {DEPLOYMENT: deployment, REVISION: revision}


def mirror_name(deployment: str) -> str:
    """The ConfigMap that tells the serving template where to mirror requests."""
    return f"{deployment}-mirror"


def peers_name(deployment: str) -> str:
    """The headless Service through which model servers find each other (feedback)."""
    return f"{deployment}-peers"
