"""Shared pydantic configuration for the API models.

Spec models forbid unknown fields (the API server already prunes or refuses them; the
operator must not silently accept what the CRD would not), use camelCase on the wire
and are frozen so decisions can hold them without copying.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

# Go-style durations as Kubernetes users write them: "30s", "1m30s", "500ms", "2h".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=32,
        json_schema_extra={"description": "A duration such as 30s, 1m30s, 500ms or 2h."},
    ),
]

# A DNS-1123 label: names of Secrets, routes, metrics and models.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]


def with_validations(*rules: tuple[str, str]) -> JsonDict:
    """Attach CEL rules (rule, message) to a schema node of the generated CRD."""
    return {
        "x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]
    }


def spec_config(*rules: tuple[str, str], tolerant: bool = False) -> ConfigDict:
    """The config of a spec model, with CEL rules (rule, message) for its CRD schema."""
    config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore" if tolerant else "forbid",
        frozen=True,
    )
    if rules:
        config["json_schema_extra"] = with_validations(*rules)
    return config


class SpecModel(BaseModel):
    """Base of every spec model: camelCase aliases, unknown fields refused, immutable."""

    model_config = spec_config()


class StatusModel(BaseModel):
    """Base of status models: tolerant of fields written by newer operator versions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )
