"""Where a package came from: the training data's version and the training run.

The data is pointed at, never copied: its URI plus a content hash lets anyone check
later that a file is the one the model was trained on. Pure: the hashes are computed
from bytes or frames handed in.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, JsonValue

DataFormat = Literal["csv", "parquet", "dataframe"]
# Versions recorded in every package: what a reproduction has to install.
LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")


class DataVersion(BaseModel):
    """A pointer to the training data and the hash of its content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    format: DataFormat
    sha256: str
    rows: int
    columns: list[str]


class TrainingInfo(BaseModel):
    """What trained the model: estimator class, parameters, library versions, metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator: str
    params: dict[str, JsonValue]
    libraries: dict[str, str]
    metrics: dict[str, float] = {}
    target: str | None = None


def frame_sha256(frame: pd.DataFrame) -> str:
    """A content hash of a DataFrame that does not depend on how it is stored."""
    digest = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _json_param(value: Any) -> JsonValue:
    # Nested estimators and numpy values are recorded by their repr: the record is
    # for humans and for the digest, not for reconstructing the estimator.
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return repr(value)


def library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def training_info(
    estimator: Any, metrics: dict[str, float] | None = None, target: str | None = None
) -> TrainingInfo:
    cls = type(estimator)
    get_params = getattr(estimator, "get_params", None)
    params = get_params(deep=False) if callable(get_params) else {}
    return TrainingInfo(
        estimator=f"{cls.__module__}.{cls.__qualname__}",
        params={str(key): _json_param(value) for key, value in sorted(params.items())},
        libraries=library_versions(),
        metrics=dict(metrics or {}),
        target=target,
    )
