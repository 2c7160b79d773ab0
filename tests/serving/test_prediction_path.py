"""The template's prediction path without a server: a few probabilities are checked in
plain Python and a batch with numpy (both must refuse the same outputs for the same
reason and answer the same labels and rows), and scikit-learn's own input scan is
skipped only where the schema already guarantees finite numbers."""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pitstop.packaging import signature
from pitstop.packaging.bento import default_template

sys.path.insert(0, str(default_template()))
from pitstop_serving import app, outputs, predictor

CHECKER = outputs.Checker(
    signature.Output(kind="classification", classes=["fraud", "ok", "review"], probabilities=True)
)
FINE = [0.2, 0.5, 0.3]
BROKEN = {
    "not_finite": [math.nan, 0.5, 0.5],
    "out_of_range": [1.2, -0.1, -0.1],
    "not_normalised": [0.5, 0.5, 0.5],
}


def _both(row: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """`row` among fine rows: once small enough for plain Python, once as a batch."""
    few = np.array([FINE, row])
    many = np.array([FINE] * outputs.SMALL + [row])
    assert few.size <= outputs.SMALL < many.size
    return few, many


@pytest.mark.parametrize("reason", sorted(BROKEN))
def test_a_broken_probability_row_is_refused_alike_alone_or_in_a_batch(reason: str) -> None:
    for proba in _both(BROKEN[reason]):
        with pytest.raises(outputs.InvalidOutput) as refused:
            CHECKER.probabilities(proba)
        assert refused.value.reason == reason


def test_labels_and_rows_are_the_same_alone_or_in_a_batch() -> None:
    tie = [0.4, 0.4, 0.2]  # numpy's argmax takes the first of equals
    few, many = _both(tie)
    labels, rows = CHECKER.probabilities(few)
    batch_labels, batch_rows = CHECKER.probabilities(many)
    assert labels == ["ok", "fraud"] == [batch_labels[0], batch_labels[-1]]
    assert rows == [FINE, tie] == [batch_rows[0], batch_rows[-1]]
    assert all(type(value) is float for value in rows[0])


def test_a_wrong_shape_is_refused_however_small() -> None:
    with pytest.raises(outputs.InvalidOutput) as refused:
        CHECKER.probabilities(np.array([[0.5, 0.5]]))
    assert refused.value.reason == "shape"


def _predictor(tmp_path: Path, nullable: bool) -> predictor.Predictor:
    from pitstop.packaging import manifest, package
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    target = (frame["a"] > 0).astype(int)
    if nullable:
        frame.loc[0, "b"] = math.nan
    model = HistGradientBoostingClassifier(max_iter=3).fit(frame, target)  # takes NaN
    made, model_bytes = package.prepare(model, frame, name="checks", version="1")
    (tmp_path / made.model_file).write_bytes(model_bytes)
    (tmp_path / manifest.FILENAME).write_text(made.model_dump_json())
    return predictor.Predictor(tmp_path)


@pytest.mark.parametrize("nullable", [False, True])
def test_sklearn_skips_its_finiteness_scan_only_where_every_input_is_finite(
    tmp_path: Path, nullable: bool
) -> None:
    """The request schema refuses NaN and infinities, but a nullable feature's null
    reaches the model as NaN: there scikit-learn must keep checking."""
    import sklearn

    model = _predictor(tmp_path, nullable)
    assert model.matrix_input
    assert model.finite_input is not nullable
    seen: list[bool] = []

    def predict_in_a_new_thread() -> None:  # the setting is scikit-learn's, per thread
        model.predict(model.model_input([(0.1, 0.2, 0.3)]))
        seen.append(sklearn.get_config()["assume_finite"])

    worker = threading.Thread(target=predict_in_a_new_thread)
    worker.start()
    worker.join()
    assert seen == [not nullable]


@pytest.mark.parametrize(
    ("version", "headers"),
    [
        ("1", [(b"x-pitstop-model-version", b"1")]),
        ("2026-11-29.rc1", [(b"x-pitstop-model-version", b"2026-11-29.rc1")]),
        ("", []),
        ("v1\r\nx-injected: 1", []),  # a header never carries a line break
        ("vérsion", []),
    ],
)
def test_the_model_version_header_is_sent_only_when_a_header_can_carry_it(
    version: str, headers: list[tuple[bytes, bytes]]
) -> None:
    assert app.naming_headers(version) == headers
