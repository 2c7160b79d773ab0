"""Smoke-test rows and the check of the answers, before any user reaches a candidate.

Rows come from the spec, or are generated from the training data profile the model
server describes at GET /signature: numbers walk through the profile's quantiles,
categories through the training categories — values the model has seen, so a failure
means the candidate is broken, not the input unusual.
"""

from __future__ import annotations

import math
import random
from typing import Any

Row = dict[str, Any]


def generate(description: dict[str, Any], count: int) -> list[Row]:
    features = description["signature"]["features"]
    profiles = {p["name"]: p for p in (description.get("profile") or {}).get("features", [])}
    rows: list[Row] = []
    for i in range(count):
        row: Row = {}
        for feature in features:
            row[feature["name"]] = _value(feature, profiles.get(feature["name"]), i)
        rows.append(row)
    return rows


def _value(feature: dict[str, Any], profile: dict[str, Any] | None, i: int) -> Any:
    kind = feature["kind"]
    if kind == "category":
        categories = feature.get("categories") or [""]
        return categories[i % len(categories)]
    if kind == "boolean":
        return i % 2 == 1
    numeric = (profile or {}).get("numeric") or {}
    # The profile names quantiles "p01" ... "p99" (packaging.profile).
    quantiles = sorted(
        (numeric.get("quantiles") or {"p50": 0.0}).items(),
        key=lambda kv: float(str(kv[0]).removeprefix("p")),
    )
    value = float(quantiles[i % len(quantiles)][1])
    return round(value) if kind == "integer" else value


def check(description: dict[str, Any], status: int, body: Any, rows: int) -> str | None:
    """What is wrong with one answer to a batch of `rows` rows, or None."""
    if status != 200:
        detail = body.get("detail") if isinstance(body, dict) else body
        return f"HTTP {status}: {str(detail)[:200]}"
    if not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
        return "the answer has no predictions list"
    predictions = body["predictions"]
    if len(predictions) != rows:
        return f"{len(predictions)} predictions for {rows} rows"
    output = description["signature"]["output"]
    if output["kind"] == "classification":
        classes = output.get("classes") or []
        unknown = [p for p in predictions if p not in classes]
        if unknown:
            return f"predicted classes outside the signature: {unknown[:3]}"
        for probabilities in body.get("probabilities") or []:
            if abs(sum(probabilities) - 1.0) > 1e-6 or min(probabilities) < 0:
                return f"probabilities do not form a distribution: {probabilities}"
    elif not all(isinstance(p, int | float) and math.isfinite(p) for p in predictions):
        return "a regression answer is not a finite number"
    return None


def sample(description: dict[str, Any], rng: random.Random) -> Row:
    """A row drawn *from* the training distribution the profile describes, for generated
    load: a bin picked with its training share, then a value uniformly inside it (the
    outer bins between the cut and the training min or max); categories by their share.
    Smoke-test rows walk the quantiles instead, which is the right test of validity but
    not a sample: binned, they would look like drift."""
    features = description["signature"]["features"]
    profiles = {p["name"]: p for p in (description.get("profile") or {}).get("features", [])}
    return {f["name"]: _draw(f, profiles.get(f["name"]), rng) for f in features}


def _draw(feature: dict[str, Any], profile: dict[str, Any] | None, rng: random.Random) -> Any:
    kind = feature["kind"]
    categorical = (profile or {}).get("categorical") or {}
    if kind == "category":
        categories = categorical.get("categories") or feature.get("categories") or [""]
        shares = categorical.get("fractions") or [1.0] * len(categories)
        return rng.choices(categories, weights=shares)[0]
    numeric = (profile or {}).get("numeric") or {}
    if kind == "boolean":
        return rng.random() < float(numeric.get("mean", 0.5))
    cuts = [float(c) for c in numeric.get("cuts") or []]
    shares = [float(f) for f in numeric.get("fractions") or [1.0]]
    low, high = float(numeric.get("min", 0.0)), float(numeric.get("max", 0.0))
    edges = [low, *cuts, high]
    index = rng.choices(range(len(shares)), weights=shares)[0]
    start, end = edges[index], edges[index + 1]
    value = start + (end - start) * rng.random() if end > start else start
    return round(value) if kind == "integer" else value
