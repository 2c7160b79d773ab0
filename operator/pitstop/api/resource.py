"""The ModelDeployment resource as a whole: identity constants and the top-level model."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pitstop.api.base import SpecModel, StatusModel, spec_config
from pitstop.api.spec import ModelDeploymentSpec
from pitstop.api.status import ModelDeploymentStatus

GROUP = "pitstop.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["md"]

# Child names are "<name>-<10-hex revision>" and must stay DNS-1035 labels (Services).
MAX_NAME_LENGTH = 52


class Metadata(StatusModel):
    """The parts of ObjectMeta the operator reads."""

    name: str
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ModelDeployment(SpecModel):
    """A model served on Kubernetes, rolled out and rolled back by Pitstop."""

    model_config = spec_config(
        (
            f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
            f"metadata.name must be at most {MAX_NAME_LENGTH} characters "
            "(child objects append a revision suffix)",
        ),
        (
            "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            "metadata.name must start with a letter and contain only lowercase "
            "letters, digits and '-' (it names Services)",
        ),
        tolerant=True,
    )

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: Metadata
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> ModelDeployment:
        """Parse an object as the API server returns it (raises pydantic.ValidationError)."""
        return cls.model_validate(obj)
