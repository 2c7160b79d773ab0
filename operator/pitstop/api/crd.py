"""Generate the CustomResourceDefinition from the pydantic models.

Pydantic emits JSON Schema (2020-12); Kubernetes wants a *structural* OpenAPI v3.0
schema. The differences handled here: `$ref`s are inlined, `Optional[X]` (anyOf with
null) becomes plain X, numeric `exclusiveMinimum/Maximum` become the v3.0 boolean
form, `title` and `additionalProperties: false` are dropped (the API server prunes or,
with strict field validation, refuses unknown fields by itself).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from pitstop.api import resource
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import ModelDeploymentSpec
from pitstop.api.status import ModelDeploymentStatus

FILENAME = f"{resource.PLURAL}.{resource.GROUP}.yaml"

Schema = dict[str, Any]

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stable.version"},
    {"name": "Candidate", "type": "string", "jsonPath": ".status.candidate.version"},
    {"name": "Traffic", "type": "string", "jsonPath": ".status.traffic.summary"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Revision", "type": "string", "jsonPath": ".status.stable.revision", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]

_DROPPED_KEYS = {"title", "$defs"}


def _structural(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Rewrite one JSON Schema node (recursively) into its structural OpenAPI form."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**target, **siblings}, defs)

    any_of = node.get("anyOf")
    if any_of is not None:
        branches = [b for b in any_of if b.get("type") != "null"]
        if len(branches) < len(any_of):  # Optional[X]: absence already means "none"
            rest = {k: v for k, v in node.items() if k != "anyOf" and not _is_null_default(k, v)}
            merged = {**branches[0], **rest} if len(branches) == 1 else {**rest, "anyOf": branches}
            return _structural(merged, defs)

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or _is_null_default(key, value):
            continue
        if key == "additionalProperties" and (
            value is False or (value is True and node.get("x-kubernetes-preserve-unknown-fields"))
        ):
            continue  # a free-form object is preserve-unknown-fields, not additionalProperties
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs)
        elif key == "anyOf":
            out[key] = [_structural(branch, defs) for branch in value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
        if out.get("default") == {}:
            # The API server checks a default against the object's CEL rules as is, so
            # an empty default would hide the fields those rules read: spell out the
            # children's own defaults.
            out["default"] = {
                name: sub["default"] for name, sub in out["properties"].items() if "default" in sub
            }
    return out


def _is_null_default(key: str, value: Any) -> bool:
    return key == "default" and value is None


def _model_schema(model: type[ModelDeploymentSpec] | type[ModelDeploymentStatus]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def openapi_schema() -> Schema:
    """The openAPIV3Schema of the ModelDeployment CRD."""
    root_extra = ModelDeployment.model_config.get("json_schema_extra")
    assert isinstance(root_extra, dict)
    return {
        "type": "object",
        "description": (ModelDeployment.__doc__ or "").strip(),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "pitstop.dev/v1alpha1"},
            "kind": {"type": "string", "description": "ModelDeployment"},
            "metadata": {"type": "object"},
            "spec": _model_schema(ModelDeploymentSpec),
            "status": _model_schema(ModelDeploymentStatus),
        },
        **root_extra,
    }


def definition() -> dict[str, Any]:
    """The full CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.PLURAL}.{resource.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "pitstop"},
        },
        "spec": {
            "group": resource.GROUP,
            "names": {
                "kind": resource.KIND,
                "listKind": f"{resource.KIND}List",
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "shortNames": list(resource.SHORT_NAMES),
                "categories": ["pitstop"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML text committed to crds/ and the chart."""
    header = "# Generated by `pitstop crd` from operator/pitstop/api; do not edit by hand.\n"
    # A model used in two places (MetricSpec in analysis and monitoring) is one dict
    # twice: written out in full each time, never as a YAML anchor and alias.
    body = json.loads(json.dumps(definition()))
    return header + yaml.safe_dump(body, sort_keys=False, width=100)
