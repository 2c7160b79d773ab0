"""The data profile: per-feature statistics of the training data.

Input checks and drift scores are computed against it, so numbers keep the cut
points of quantile bins (each bin holds about the same share of training rows, which
keeps PSI well conditioned) next to the summary statistics, and categories keep
their frequencies. Pure functions of a DataFrame; no I/O.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from pitstop.packaging import signature as signature_
from pitstop.packaging.signature import Label

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DEFAULT_BINS = 10


class NumericProfile(BaseModel):
    """Statistics of a number, integer or boolean feature (booleans count as 0/1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float
    max: float
    mean: float
    std: float
    quantiles: dict[str, float]
    # Bin i holds values v with cuts[i-1] <= v < cuts[i]; the outer bins are open.
    cuts: list[float]
    fractions: list[float]


class CategoricalProfile(BaseModel):
    """Share of each training category among the non-missing values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    categories: list[Label]
    fractions: list[float]


class FeatureProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: signature_.FeatureKind
    count: int
    missing_rate: float
    numeric: NumericProfile | None = None
    categorical: CategoricalProfile | None = None


class DataProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    features: list[FeatureProfile]

    def feature(self, name: str) -> FeatureProfile:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)


def bin_counts(cuts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many of `values` fall in each of the len(cuts)+1 bins."""
    indices = np.searchsorted(cuts, values, side="right")
    return np.bincount(indices, minlength=len(cuts) + 1)


def _finite(value: float) -> float:
    # JSON has no NaN/inf; an all-missing column profiles as zeros, flagged by its
    # missing_rate of 1.
    return float(value) if math.isfinite(value) else 0.0


def numeric(values: np.ndarray, bins: int = DEFAULT_BINS) -> NumericProfile:
    """Profile of the non-missing values of one numeric column."""
    if values.size == 0:
        return NumericProfile(
            min=0.0, max=0.0, mean=0.0, std=0.0, quantiles={}, cuts=[], fractions=[1.0]
        )
    inner = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    cuts = np.unique(np.quantile(values, inner))
    counts = bin_counts(cuts, values)
    return NumericProfile(
        min=_finite(values.min()),
        max=_finite(values.max()),
        mean=_finite(values.mean()),
        std=_finite(values.std()),
        quantiles={f"p{round(q * 100):02d}": float(np.quantile(values, q)) for q in QUANTILES},
        cuts=[float(cut) for cut in cuts],
        fractions=[float(count) / values.size for count in counts],
    )


def categorical(column: pd.Series, categories: list[Label]) -> CategoricalProfile:
    """Frequencies of `categories` (the signature's order) among non-missing values."""
    present = column.dropna()
    counts = present.map(signature_.to_label).value_counts()
    total = max(len(present), 1)
    return CategoricalProfile(
        categories=list(categories),
        fractions=[float(counts.get(category, 0)) / total for category in categories],
    )


def feature(
    column: pd.Series, spec: signature_.Feature, bins: int = DEFAULT_BINS
) -> FeatureProfile:
    rows = len(column)
    missing = int(column.isna().sum())
    result = FeatureProfile(
        name=spec.name,
        kind=spec.kind,
        count=rows - missing,
        missing_rate=missing / rows if rows else 0.0,
    )
    if spec.kind == "category":
        return result.model_copy(
            update={"categorical": categorical(column, list(spec.categories or []))}
        )
    values = column.dropna().to_numpy(dtype=np.float64)
    return result.model_copy(update={"numeric": numeric(values, bins)})


def build(
    frame: pd.DataFrame, signature: signature_.Signature, bins: int = DEFAULT_BINS
) -> DataProfile:
    """The profile of `frame`'s feature columns, in signature order."""
    return DataProfile(
        rows=len(frame),
        features=[feature(frame[spec.name], spec, bins) for spec in signature.features],
    )
