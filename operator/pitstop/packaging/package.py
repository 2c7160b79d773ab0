"""Making a package: check the inputs, describe them, store the result.

`prepare` is everything but the write (so tests and dry runs need no model store);
`create` adds the one call to `store.save`.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from pitstop.packaging import (
    code,
    digest,
    errors,
    lineage,
    manifest,
    profile,
    signature,
    sources,
    store,
)


def _dump(estimator: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def content_sha256(estimator: Any) -> str:
    """A hash of the estimator's content that does not depend on the process.

    Pickle bytes do: its memo shares equal objects that happen to be identical (an
    interned string, a reused array), and which ones are depends on the process's
    history. With the memo off ("fast" mode) every object is written out by value.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True
    try:
        pickler.dump(estimator)
    except ValueError:
        # Self-referencing objects need the memo; fall back to the plain bytes.
        return hashlib.sha256(_dump(estimator)).hexdigest()
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def prepare(
    model: Any,
    data: pd.DataFrame | Path,
    *,
    name: str,
    version: str,
    target: str | None = None,
    data_uri: str | None = None,
    metrics: dict[str, float] | None = None,
    bins: int = profile.DEFAULT_BINS,
    batchable: bool = True,
) -> tuple[manifest.Manifest, bytes]:
    """The manifest and serialized model for `model` trained on `data`.

    `model` is a fitted estimator or a path to one saved with joblib/pickle; `data` a
    DataFrame or a CSV/Parquet path. Raises `PackagingError` naming what is wrong.
    """
    store.check_tag(name, version)
    estimator = sources.load_estimator(model) if isinstance(model, Path) else model
    sources.check_estimator(estimator)
    if isinstance(data, Path):
        frame, data_version = sources.load_frame(data, data_uri)
    elif isinstance(data, pd.DataFrame):
        frame, data_version = data, sources.describe_frame(data, data_uri)
    else:
        raise errors.PackagingError(
            f"training data must be a DataFrame or a file path, not {type(data).__name__}"
        )
    features = sources.feature_frame(frame, estimator, target)
    signature_ = signature.infer(features, estimator)
    profile_ = profile.build(features, signature_, bins)
    training = lineage.training_info(estimator, metrics, target)
    shipped = code.local_modules(estimator)
    content = content_sha256(estimator)
    if shipped:
        model_bytes = code.dump_by_value(estimator, shipped)
        content = hashlib.sha256(
            f"{content}:{code.source_sha256(shipped, model_bytes)}".encode()
        ).hexdigest()
    else:
        model_bytes = _dump(estimator)
    model_sha256 = hashlib.sha256(model_bytes).hexdigest()
    result = manifest.Manifest(
        name=name,
        version=version,
        digest=digest.compute(content, signature_, profile_, data_version, training),
        model_sha256=model_sha256,
        content_sha256=content,
        signature=signature_,
        profile=profile_,
        data=data_version,
        training=training,
        batchable=batchable,
        code=shipped,
    )
    return result, model_bytes


def create(
    model: Any,
    data: pd.DataFrame | Path,
    *,
    name: str,
    version: str,
    target: str | None = None,
    data_uri: str | None = None,
    metrics: dict[str, float] | None = None,
    bins: int = profile.DEFAULT_BINS,
    batchable: bool = True,
) -> manifest.Manifest:
    """Package `model` into the BentoML model store as `name:version`."""
    result, model_bytes = prepare(
        model,
        data,
        name=name,
        version=version,
        target=target,
        data_uri=data_uri,
        metrics=metrics,
        bins=bins,
        batchable=batchable,
    )
    store.save(result, model_bytes)
    return result
