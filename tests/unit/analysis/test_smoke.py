from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from pitstop.analysis import smoke
from pitstop.packaging import profile as profile_

DESCRIPTION: dict[str, Any] = {
    "signature": {
        "features": [
            {"name": "amount", "kind": "number"},
            {"name": "count", "kind": "integer"},
            {"name": "country", "kind": "category", "categories": ["de", "fr"]},
            {"name": "is_new", "kind": "boolean"},
        ],
        "output": {"kind": "classification", "classes": ["ok", "fraud"], "probabilities": True},
    },
    "profile": {"features": [
        {"name": "amount", "numeric": {"quantiles": {"p50": 120.0, "p01": 1.5, "p99": 900.0}}},
        {"name": "count", "numeric": {"quantiles": {"p50": 3.2}}},
    ]},
}  # fmt: skip


def test_generated_rows_use_values_seen_in_training() -> None:
    rows = smoke.generate(DESCRIPTION, 3)
    assert [r["amount"] for r in rows] == [1.5, 120.0, 900.0]
    assert {r["count"] for r in rows} == {3}
    assert [r["country"] for r in rows] == ["de", "fr", "de"]
    assert [r["is_new"] for r in rows] == [False, True, False]


def test_check_accepts_a_valid_answer() -> None:
    body = {"predictions": ["ok"], "probabilities": [[0.7, 0.3]]}
    assert smoke.check(DESCRIPTION, 200, body, 1) is None


def test_check_names_what_is_wrong() -> None:
    assert "HTTP 500" in (smoke.check(DESCRIPTION, 500, {"detail": "boom"}, 1) or "")
    assert "outside the signature" in (
        smoke.check(DESCRIPTION, 200, {"predictions": ["maybe"]}, 1) or ""
    )
    bad = {"predictions": ["ok"], "probabilities": [[0.7, 0.7]]}
    assert "distribution" in (smoke.check(DESCRIPTION, 200, bad, 1) or "")
    assert "2 predictions for 1 rows" in (
        smoke.check(DESCRIPTION, 200, {"predictions": ["ok", "ok"]}, 1) or ""
    )


def test_generated_load_is_drawn_from_the_training_distribution() -> None:
    """Binned like the drift check bins them, sampled rows land in each training bin
    with its training share: generated load must not look like drift."""
    cuts = [1.0, 2.0, 3.0]
    description = {
        "signature": {"features": [{"name": "x", "kind": "number"},
                                   {"name": "c", "kind": "category", "categories": ["a", "b"]}]},
        "profile": {"features": [
            {"name": "x", "numeric": {"min": 0.0, "max": 4.0, "cuts": cuts,
                                      "fractions": [0.1, 0.2, 0.3, 0.4], "quantiles": {}}},
            {"name": "c", "categorical": {"categories": ["a", "b"], "fractions": [0.9, 0.1]}},
        ]},
    }  # fmt: skip
    rng = random.Random(5)
    rows = [smoke.sample(description, rng) for _ in range(20_000)]
    counts = profile_.bin_counts(np.asarray(cuts), np.asarray([r["x"] for r in rows]))
    assert np.allclose(counts / len(rows), [0.1, 0.2, 0.3, 0.4], atol=0.015)
    assert sum(r["c"] == "a" for r in rows) / len(rows) == pytest.approx(0.9, abs=0.015)
