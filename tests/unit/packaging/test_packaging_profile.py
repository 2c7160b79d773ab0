"""The data profile and PSI: pure functions, checked on frames with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pitstop.packaging import drift, profile, signature


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(0.0, 1.0, 1000),
            "n": rng.integers(0, 5, 1000),
            "c": rng.choice(["a", "b"], 1000, p=[0.75, 0.25]),
            "flag": rng.random(1000) < 0.5,
        }
    )


def built() -> tuple[signature.Signature, profile.DataProfile]:
    data = frame()
    data.loc[:99, "x"] = np.nan
    sig = signature.Signature(
        features=[signature.infer_feature(str(name), data[name]) for name in data.columns],
        output=signature.Output(kind="regression"),
    )
    return sig, profile.build(data, sig)


def test_kinds_are_inferred_from_dtypes() -> None:
    sig, _ = built()
    assert [(f.name, f.kind, f.nullable) for f in sig.features] == [
        ("x", "number", True),
        ("n", "integer", False),
        ("c", "category", False),
        ("flag", "boolean", False),
    ]
    assert sig.features[2].categories == ["a", "b"]


def test_numeric_profile_has_stats_quantiles_and_equal_mass_bins() -> None:
    _, prof = built()
    x = prof.feature("x")
    assert x.missing_rate == pytest.approx(0.1)
    assert x.count == 900
    assert x.numeric is not None
    assert x.numeric.min < x.numeric.quantiles["p50"] < x.numeric.max
    assert len(x.numeric.cuts) == 9
    assert x.numeric.fractions == pytest.approx([0.1] * 10, abs=0.002)
    assert sum(x.numeric.fractions) == pytest.approx(1.0)


def test_categorical_profile_has_frequencies() -> None:
    _, prof = built()
    c = prof.feature("c").categorical
    assert c is not None
    assert c.categories == ["a", "b"]
    assert c.fractions == pytest.approx([0.75, 0.25], abs=0.05)


def test_integer_columns_with_few_values_get_fewer_bins() -> None:
    _, prof = built()
    n = prof.feature("n").numeric
    assert n is not None
    assert len(n.cuts) < 9
    assert sum(n.fractions) == pytest.approx(1.0)


def test_bin_edges_are_left_closed() -> None:
    counts = profile.bin_counts(np.array([1.0, 2.0]), np.array([0.5, 1.0, 1.5, 2.0, 3.0]))
    assert counts.tolist() == [1, 2, 2]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    expected = [0.25, 0.25, 0.25, 0.25]
    assert drift.psi(expected, [25, 25, 25, 25]) == 0.0
    small = drift.psi(expected, [30, 25, 25, 20])
    large = drift.psi(expected, [70, 10, 10, 10])
    assert 0 < small < 0.1 < large


def test_psi_matches_the_textbook_formula() -> None:
    expected, observed = [0.5, 0.5], [80, 20]
    formula = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert drift.psi(expected, observed) == pytest.approx(formula)


def test_psi_of_nothing_observed_is_zero_and_empty_bins_stay_finite() -> None:
    assert drift.psi([0.5, 0.5], [0, 0]) == 0.0
    assert math.isfinite(drift.psi([1.0, 0.0], [0, 10]))
    with pytest.raises(ValueError, match="expected shares"):
        drift.psi([1.0], [1, 2])


def test_window_scores_low_in_distribution_and_high_when_shifted() -> None:
    _, prof = built()
    window = drift.Window(prof, size=500)
    rng = np.random.default_rng(1)
    same = [(float(v), 2, "a", True) for v in rng.normal(0.0, 1.0, 500)]
    window.add(window.encode(same))
    assert window.filled == 500
    assert window.scores()["x"] < 0.1
    shifted = [(float(v), 2, "b", True) for v in rng.normal(3.0, 1.0, 500)]
    window.add(window.encode(shifted))
    scores = window.scores()
    assert scores["x"] > 1.0
    assert scores["c"] > 1.0


def test_window_forgets_the_oldest_rows_across_the_wrap() -> None:
    _, prof = built()
    window = drift.Window(prof, size=10)
    old = window.encode([(5.0, 1, "a", False)] * 7)
    new = window.encode([(-5.0, 1, "b", True)] * 6)
    window.add(old)
    window.add(new)
    assert window.filled == 10
    x = window._buffer[:, 0]
    assert (x == -5.0).sum() == 6
    assert (x == 5.0).sum() == 4


def test_window_encodes_unknown_categories_and_nulls_as_missing() -> None:
    _, prof = built()
    window = drift.Window(prof, size=4)
    encoded = window.encode([(None, 1, "zzz", True)])
    assert np.isnan(encoded[0, 0])
    assert np.isnan(encoded[0, 2])
    assert encoded[0, 3] == 1.0
