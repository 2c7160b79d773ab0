"""The loaded package: estimator, manifest, and the cheapest way to call it.

Models whose features are all numeric are fed a float matrix (no DataFrame per
request, which would cost more than a linear model's prediction); anything else, or
a model that refuses a matrix (e.g. a ColumnTransformer selecting columns by name),
gets a DataFrame. The choice is made once, at load time, by trying both.

A matrix built from a signature without nullable features holds only finite numbers
(the request schema refuses NaN and infinities), so scikit-learn's own finiteness
scan of every input is skipped (`assume_finite`): on a linear model it is an eighth
of the prediction's cost. scikit-learn keeps that setting per thread, so each thread
that predicts (the event loop, the batcher's) sets it on its first prediction.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from pitstop.packaging import manifest as manifest_

from pitstop_serving import inputs, outputs


def package_folder(tag: str) -> Path:
    """Where BentoML keeps the package: the bento's own store when serving a bento.

    Without a tag, the package is the bento's only model. The image sets no
    PITSTOP_MODEL (see `pitstop.packaging.bento`): its bento holds exactly one model,
    and BentoML serves a bento with the bento's own model store."""
    import bentoml

    if tag:
        return Path(bentoml.models.get(tag).path)
    models = bentoml.models.list()
    if len(models) != 1:
        held = ", ".join(sorted(str(m.tag) for m in models)) or "none"
        raise LookupError(
            f"PITSTOP_MODEL is unset and the model store holds {len(models)} models "
            f"({held}): set PITSTOP_MODEL to the package to serve (name:version)"
        )
    return Path(models[0].path)


class Predictor:
    def __init__(self, folder: Path) -> None:
        self.manifest = manifest_.Manifest.model_validate_json(
            (folder / manifest_.FILENAME).read_bytes()
        )
        self.signature = self.manifest.signature
        self.estimator = joblib.load(folder / self.manifest.model_file)
        self.checker = outputs.Checker(self.signature.output)
        self.names = self.signature.names
        output = self.signature.output
        self.kind = (
            "probabilities"
            if output.kind == "classification" and output.probabilities
            else "labels"
            if output.kind == "classification"
            else "values"
        )
        self._method = getattr(
            self.estimator, "predict_proba" if self.kind == "probabilities" else "predict"
        )
        self.numeric = all(f.kind != "category" for f in self.signature.features)
        self.matrix_input = self.numeric and self._accepts_matrix()
        self.finite_input = self.matrix_input and not any(
            f.nullable for f in self.signature.features
        )
        self._configured = threading.local()  # threads that have set assume_finite

    def _sample(self) -> list[tuple[Any, ...]]:
        row = []
        for feature in self.manifest.profile.features:
            if feature.numeric is not None:
                value: Any = feature.numeric.quantiles.get("p50", feature.numeric.mean)
                row.append(value if feature.kind == "number" else round(value))
            else:
                row.append(None)
        return [tuple(row)]

    def _accepts_matrix(self) -> bool:
        # A model fitted on a DataFrame warns about missing feature names on every
        # matrix call; that warning is silenced once here, for this process only.
        warnings.filterwarnings(
            "ignore", message="X does not have valid feature names", category=UserWarning
        )
        sample = self._sample()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                by_matrix = self._method(inputs.matrix(sample))
            by_frame = self._method(self.frame(sample))
            return bool(np.allclose(by_matrix, by_frame, equal_nan=True))
        except Exception:
            return False

    def frame(self, rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
        return pd.DataFrame.from_records(rows, columns=self.names)

    def model_input(self, rows: Sequence[tuple[Any, ...]]) -> Any:
        return inputs.matrix(rows) if self.matrix_input else self.frame(rows)

    def predict(self, model_input: Any) -> dict[str, Any]:
        """The response body for `model_input`; raises `outputs.InvalidOutput`."""
        if self.finite_input and not hasattr(self._configured, "done"):
            _assume_finite()
            self._configured.done = True
        raw = self._method(model_input)
        if self.kind == "probabilities":
            labels, proba = self.checker.probabilities(raw)
            return {"predictions": labels, "probabilities": proba}
        if self.kind == "labels":
            return {"predictions": self.checker.labels(raw)}
        return {"predictions": self.checker.values(raw)}

    def describe(self, request_schema: dict[str, Any]) -> bytes:
        return json.dumps(
            {
                "name": self.manifest.name,
                "version": self.manifest.version,
                "digest": self.manifest.digest,
                "signature": self.signature.model_dump(mode="json"),
                # The operator generates smoke-test rows from the training profile.
                "profile": self.manifest.profile.model_dump(mode="json"),
                "request_schema": request_schema,
            }
        ).encode()


def _assume_finite() -> None:
    try:
        import sklearn
    except ImportError:  # not a scikit-learn model: nothing to skip
        return
    sklearn.set_config(assume_finite=True)
