"""Making packages: signature, digest, bad inputs, store round trips and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from pitstop.packaging import digest, errors, package
from sklearn.linear_model import LinearRegression, LogisticRegression


def data(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.integers(0, 3, rows)})
    frame["y"] = np.where(frame.a > 0, "yes", "no")
    return frame


def classifier(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame[["a", "b"]], frame.y)


def test_signature_records_features_classes_and_probabilities() -> None:
    frame = data()
    manifest, _ = package.prepare(classifier(frame), frame, name="m", version="1", target="y")
    assert manifest.signature.names == ["a", "b"]
    assert manifest.signature.output.kind == "classification"
    assert manifest.signature.output.classes == ["no", "yes"]
    assert manifest.signature.output.probabilities
    assert manifest.training.estimator.endswith("LogisticRegression")
    assert "scikit-learn" in manifest.training.libraries
    assert manifest.data.format == "dataframe"
    assert manifest.data.rows == 300


def test_a_regressor_has_a_regression_output() -> None:
    frame = data()
    model = LinearRegression().fit(frame[["a", "b"]], frame.a * 2)
    manifest, _ = package.prepare(model, frame, name="r", version="1", target="y")
    assert manifest.signature.output.kind == "regression"


def test_the_same_inputs_give_the_same_digest_and_others_do_not() -> None:
    frame = data()
    model = classifier(frame)
    first, _ = package.prepare(model, frame, name="m", version="1", target="y")
    again, _ = package.prepare(model, frame.copy(), name="m", version="2", target="y")
    assert first.digest == again.digest
    other, _ = package.prepare(model, data(301), name="m", version="1", target="y")
    assert other.digest != first.digest
    assert first.digest == digest.compute(
        first.content_sha256, first.signature, first.profile, first.data, first.training
    )


def test_the_digest_survives_a_save_and_load_in_another_process(tmp_path: Path) -> None:
    frame = data()
    model_file, data_file = tmp_path / "m.joblib", tmp_path / "d.csv"
    joblib.dump(classifier(frame), model_file)
    frame.to_csv(data_file, index=False)
    here, _ = package.prepare(model_file, data_file, name="m", version="1", target="y")
    code = textwrap.dedent(f"""
        from pathlib import Path
        from pitstop.packaging import package
        m, _ = package.prepare(Path({str(model_file)!r}), Path({str(data_file)!r}),
                               name="m", version="1", target="y")
        print(m.digest)
    """)
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there == here.digest


def test_an_unfitted_estimator_is_refused() -> None:
    with pytest.raises(errors.PackagingError, match="LogisticRegression is not fitted"):
        package.prepare(LogisticRegression(), data(), name="m", version="1", target="y")


def test_columns_that_do_not_match_the_model_are_named() -> None:
    frame = data()
    model = classifier(frame)
    with pytest.raises(errors.PackagingError, match=r"missing columns \['b'\]"):
        package.prepare(model, frame.drop(columns="b"), name="m", version="1", target="y")
    with pytest.raises(errors.PackagingError, match=r"unexpected columns \['y'\]"):
        package.prepare(model, frame, name="m", version="1")
    with pytest.raises(errors.PackagingError, match="target column 'label'"):
        package.prepare(model, frame, name="m", version="1", target="label")


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    frame = data()
    junk = tmp_path / "model.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(errors.PackagingError, match=r"model\.pkl is neither"):
        package.prepare(junk, frame, name="m", version="1", target="y")
    with pytest.raises(errors.PackagingError, match="does not exist"):
        package.prepare(tmp_path / "none.joblib", frame, name="m", version="1")
    csv = tmp_path / "data.json"
    csv.write_text("{}")
    with pytest.raises(errors.PackagingError, match=r"unknown format '\.json'"):
        package.prepare(classifier(frame), csv, name="m", version="1")


def test_bad_names_are_refused() -> None:
    with pytest.raises(errors.PackagingError, match="package name 'Fraud!'"):
        package.prepare(classifier(data()), data(), name="Fraud!", version="1", target="y")


def test_store_round_trip_and_cli(tmp_path: Path) -> None:
    """Save, show, export, import (verified) and refuse a tampered export, via the CLI.

    Runs in a child process: BentoML fixes its home folder when first imported.
    """
    frame = data()
    model_file, data_file = tmp_path / "m.joblib", tmp_path / "d.parquet"
    joblib.dump(classifier(frame), model_file)
    frame.to_parquet(data_file)
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "true"}
    pitstop = [str(Path(sys.executable).with_name("pitstop"))]

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*pitstop, "package", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert (done.returncode == 0) == ok, done.stderr
        return done

    exported = tmp_path / "out"
    exported.mkdir()
    created = cli("create", str(model_file), "--data", str(data_file), "--name", "m",
                  "--version", "1", "--target", "y", "--metric", "auc=0.9",
                  "--export", str(exported))  # fmt: skip
    assert "packaged m:1 sha256:" in created.stdout
    assert (exported / "m-1.bentomodel").is_file()
    assert '"auc": 0.9' in cli("show", "m:1").stdout
    # Relative paths are the working directory's (BentoML alone reads them from `/`).
    refused = cli("export", "m:1", "again/m-1.bentomodel", ok=False).stderr
    assert f"export destination folder {tmp_path / 'again'} does not exist" in refused
    assert "Traceback" not in refused
    (tmp_path / "again").mkdir()
    cli("export", "m:1", "again/m-1.bentomodel")
    assert (tmp_path / "again" / "m-1.bentomodel").is_file()
    again = cli("create", str(model_file), "--data", str(data_file), "--name", "m",
                "--version", "1", "--target", "y", "--metric", "auc=0.8", ok=False)  # fmt: skip
    assert "already exists with different content" in again.stderr
    env["BENTOML_HOME"] = str(tmp_path / "elsewhere")
    imported = cli("import", "out/m-1.bentomodel")
    assert imported.stdout.split()[1:] == created.stdout.split()[1:3]
    missing = cli("show", "nope:1", ok=False)
    assert "nope:1 is not in the model store" in missing.stderr
    assert "Traceback" not in missing.stderr
