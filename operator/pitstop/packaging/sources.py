"""Reading what a user hands to `pitstop package`: an estimator and training data.

Every failure becomes a `PackagingError` naming the file or column, and the checks
run before anything is written, so a bad input never leaves a half-made package.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from pitstop.packaging import errors, lineage

# How many training rows the estimator is asked to predict to prove the columns fit.
SMOKE_ROWS = 5


def load_estimator(path: Path) -> Any:
    """An estimator saved with joblib or pickle."""
    if not path.is_file():
        raise errors.PackagingError(f"model file {path} does not exist")
    try:
        return joblib.load(path)
    except ModuleNotFoundError as missing:
        raise errors.PackagingError(
            f"model file {path} refers to module {missing.name!r}, which does not import "
            "here: package it where that module imports (the folder that holds it), and "
            "its code is shipped inside the package"
        ) from missing
    except Exception as joblib_error:
        try:
            with path.open("rb") as stream:
                return pickle.load(stream)
        except Exception:
            raise errors.PackagingError(
                f"model file {path} is neither a joblib nor a pickle file: {joblib_error}"
            ) from joblib_error


def check_estimator(estimator: Any) -> None:
    """A fitted scikit-learn-style estimator with a `predict` method."""
    name = type(estimator).__name__
    if not callable(getattr(estimator, "predict", None)):
        raise errors.PackagingError(f"{name} has no predict method; it is not an estimator")
    try:
        check_is_fitted(estimator)
    except NotFittedError as error:
        raise errors.PackagingError(f"{name} is not fitted: call fit() before packaging") from error
    except TypeError as error:
        raise errors.PackagingError(f"{name} is not a scikit-learn estimator: {error}") from error


def load_frame(path: Path, uri: str | None = None) -> tuple[pd.DataFrame, lineage.DataVersion]:
    """Training data from a CSV or Parquet file, with its version (URI and file hash)."""
    if not path.is_file():
        raise errors.PackagingError(f"training data {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame, data_format = pd.read_parquet(path), "parquet"
        elif suffix in {".csv", ".txt"}:
            frame, data_format = pd.read_csv(path), "csv"
        else:
            raise errors.PackagingError(
                f"training data {path}: unknown format {suffix!r} (use .csv or .parquet)"
            )
    except errors.PackagingError:
        raise
    except Exception as error:
        raise errors.PackagingError(f"training data {path} cannot be read: {error}") from error
    if frame.empty:
        raise errors.PackagingError(f"training data {path} has no rows")
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    version = lineage.DataVersion(
        uri=uri or path.resolve().as_uri(),
        format=data_format,
        sha256=digest.hexdigest(),
        rows=len(frame),
        columns=[str(column) for column in frame.columns],
    )
    return frame, version


def describe_frame(frame: pd.DataFrame, uri: str | None = None) -> lineage.DataVersion:
    """The version of an in-memory DataFrame: a content hash and the URI given."""
    if frame.empty:
        raise errors.PackagingError("training data has no rows")
    return lineage.DataVersion(
        uri=uri or "memory:",
        format="dataframe",
        sha256=lineage.frame_sha256(frame),
        rows=len(frame),
        columns=[str(column) for column in frame.columns],
    )


def feature_frame(frame: pd.DataFrame, estimator: Any, target: str | None) -> pd.DataFrame:
    """The columns the estimator was trained on, in its order; mismatches are errors."""
    name = type(estimator).__name__
    if target is not None:
        if target not in frame.columns:
            raise errors.PackagingError(f"target column {target!r} is not in the training data")
        frame = frame.drop(columns=[target])
    columns = [str(column) for column in frame.columns]
    expected = getattr(estimator, "feature_names_in_", None)
    if expected is not None:
        wanted = [str(column) for column in expected]
        missing = [column for column in wanted if column not in columns]
        extra = [column for column in columns if column not in wanted]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing columns {missing}")
            if extra:
                parts.append(f"unexpected columns {extra} (pass the label as the target)")
            raise errors.PackagingError(f"training data does not match {name}: " + "; ".join(parts))
        frame = frame[wanted]
    else:
        count = getattr(estimator, "n_features_in_", None)
        if count is not None and count != len(columns):
            raise errors.PackagingError(
                f"{name} was trained on {count} features but the training data has "
                f"{len(columns)} columns: {columns}"
            )
    # An estimator fitted on an array warns when given named columns: give it an array.
    sample = frame.head(SMOKE_ROWS)
    try:
        estimator.predict(sample if expected is not None else sample.to_numpy())
    except Exception as error:
        raise errors.PackagingError(
            f"{name} cannot predict the training data's rows: {error}"
        ) from error
    return frame
