"""The input/output contract of a packaged model.

The signature is what the serving template compiles its request and response
validators from, so it records exactly what a client may send (feature names, types,
allowed categories, whether null is accepted) and what the model may answer (class
labels with their set, probabilities, or a regression value). Inference from training
data is a pure function of the frame and the fitted estimator: no I/O here.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

from pitstop.packaging import errors

FeatureKind = Literal["number", "integer", "boolean", "category"]
OutputKind = Literal["classification", "regression"]
# Strict scalars keep `True` from turning into `1` (and back) on a JSON round trip.
Label = StrictBool | StrictInt | StrictFloat | StrictStr

# Above this many distinct values a string column is rejected rather than treated as a
# category: free text cannot be validated against a closed set.
MAX_CATEGORIES = 1000


class Feature(BaseModel):
    """One input column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: FeatureKind
    nullable: bool = False
    categories: list[Label] | None = None


class Output(BaseModel):
    """What the model answers for one row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: OutputKind
    classes: list[Label] | None = None
    probabilities: bool = False


class Signature(BaseModel):
    """Inputs in the order the estimator expects them, and the output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: list[Feature]
    output: Output

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]


def to_label(value: Any) -> Label:
    """A numpy or pandas scalar as the plain Python value JSON will carry."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    raise errors.PackagingError(f"class label {value!r} is not a string, number or boolean")


def infer_feature(name: str, column: pd.Series) -> Feature:
    """The kind of one training column, from its dtype (and values for objects)."""
    nullable = bool(column.isna().any())
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return Feature(name=name, kind="boolean", nullable=nullable)
    if pd.api.types.is_integer_dtype(dtype):
        return Feature(name=name, kind="integer", nullable=nullable)
    if pd.api.types.is_float_dtype(dtype):
        return Feature(name=name, kind="number", nullable=nullable)
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or (pd.api.types.is_string_dtype(dtype))
    ):
        values = column.dropna().unique()
        if len(values) > MAX_CATEGORIES:
            raise errors.PackagingError(
                f"column {name!r} has {len(values)} distinct values; at most "
                f"{MAX_CATEGORIES} are supported for a categorical feature"
            )
        categories = sorted((to_label(value) for value in values), key=repr)
        return Feature(name=name, kind="category", nullable=nullable, categories=categories)
    raise errors.PackagingError(f"column {name!r} has unsupported dtype {dtype}")


def infer_output(estimator: Any) -> Output:
    """Classification when the estimator knows its classes, regression otherwise."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return Output(kind="regression")
    labels = [to_label(value) for value in np.asarray(classes).tolist()]
    return Output(
        kind="classification",
        classes=labels,
        probabilities=callable(getattr(estimator, "predict_proba", None)),
    )


def infer(frame: pd.DataFrame, estimator: Any) -> Signature:
    """The signature of `estimator` trained on the feature columns of `frame`."""
    features = [infer_feature(str(name), frame[name]) for name in frame.columns]
    return Signature(features=features, output=infer_output(estimator))
