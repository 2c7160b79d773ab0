"""The CRD is generated from the models, structural, and committed in sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pitstop.api import crd

ROOT = Path(__file__).resolve().parents[3]
COPIES = [ROOT / "crds" / crd.FILENAME, ROOT / "charts" / "pitstop" / "crds" / crd.FILENAME]


def test_committed_copies_match_the_models() -> None:
    """Run `make crd` after changing operator/pitstop/api when this fails."""
    expected = crd.render()
    for path in COPIES:
        assert path.read_text() == expected, f"{path} is stale: run `make crd`"


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += walk(value, f"{path}[{i}]")
    return found


def test_schema_is_structural() -> None:
    schema = crd.openapi_schema()
    text = json.dumps(schema)
    assert "$ref" not in text
    assert '"null"' not in text
    assert '"title"' not in text
    for path, node in walk(schema):
        if path.endswith(".properties") or "x-kubernetes-validations" in path:
            continue
        if "properties" in node:
            assert node.get("type") == "object", path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    """Paths of properties (fields) below `node` that carry no description."""
    found: list[str] = []
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}"
        if "description" not in child:
            found.append(here)
        found += undescribed(child, here)
        if isinstance(child.get("items"), dict):
            found += undescribed(child["items"], here + "[]")
    return found


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    assert undescribed(crd.openapi_schema()["properties"]["spec"], "spec") == []


def test_sections_default_so_nested_defaults_apply() -> None:
    props = crd.openapi_schema()["properties"]["spec"]["properties"]
    for section in ("serving", "strategy", "analysis", "traffic"):
        assert isinstance(props[section]["default"], dict)
    assert props["traffic"]["default"] == {"provider": "service"}
    assert props["serving"]["properties"]["replicas"]["default"] == 1


def test_printer_columns_and_names() -> None:
    definition = crd.definition()
    version = definition["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["Phase", "Stable", "Candidate", "Traffic", "Age"]
    assert definition["spec"]["names"]["shortNames"] == ["md"]
    assert version["subresources"] == {"status": {}}
    assert yaml.safe_load(crd.render()) == definition
