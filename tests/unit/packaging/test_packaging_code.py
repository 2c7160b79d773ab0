"""The user's own code a model refers to travels inside its package (packaging.code).

Each process step runs as a child process, as a user would run it: training and
packaging where the user's module imports, serving where it does not (as in an image).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from pitstop.packaging import code
from sklearn.linear_model import LogisticRegression

MODULE = '''\
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(TransformerMixin, BaseEstimator):
    """Scales every feature by 2: a transformer of the user's own."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) * 2
'''

TRAIN = """\
import joblib, numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from custom_features import Doubler

rng = np.random.default_rng(0)
frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
frame["y"] = (frame.a + frame.b > 0).astype(int)
joblib.dump(make_pipeline(Doubler(), LogisticRegression()).fit(frame[["a", "b"]], frame.y),
            "model.joblib")
frame.to_parquet("train.parquet")
"""

SERVE = """\
import importlib.util, json, pandas as pd
from pitstop.packaging import store
assert importlib.util.find_spec("custom_features") is None, "the module imports here"
model = store.load_estimator("m:1")
print(json.dumps([int(p) for p in model.predict(pd.DataFrame({"a": [1.0, -1.0], "b": [1.0, -1.0]}))]))
"""


def _run(
    args: list[str], cwd: Path, home: Path, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


def test_a_class_of_the_users_own_module_is_shipped_and_serves_where_it_does_not_import(
    tmp_path: Path,
) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "custom_features.py").write_text(MODULE)
    _run([sys.executable, "-c", TRAIN], work, tmp_path / "home")
    pitstop = str(Path(sys.executable).with_name("pitstop"))
    create = [pitstop, "package", "create", "model.joblib", "--data", "train.parquet",
              "--name", "m", "--version", "1", "--target", "y"]  # fmt: skip

    # Where the module does not import, the model file cannot even be read: say so.
    absolute = [*create[:3], str(work / "model.joblib"), "--data", str(work / "train.parquet"),
                *create[6:]]  # fmt: skip
    refused = _run(absolute, elsewhere, tmp_path / "home", ok=False).stderr
    assert "refers to module 'custom_features', which does not import here" in refused
    assert "Traceback" not in refused

    (work / "out").mkdir()
    made = _run([*create, "--export", "out"], work, tmp_path / "home").stdout
    assert "shipped with the model, by value: custom_features" in made
    digest = made.split()[2]

    # Served from another folder and store, where `custom_features` does not import.
    served_home = tmp_path / "served"
    _run(
        [pitstop, "package", "import", str(work / "out" / "m-1.bentomodel")], elsewhere, served_home
    )
    answers = _run([sys.executable, "-c", SERVE], elsewhere, served_home).stdout
    assert json.loads(answers.splitlines()[-1]) == [1, 0]
    shown = json.loads(_run([pitstop, "package", "show", "m:1"], elsewhere, served_home).stdout)
    assert shown["code"] == ["custom_features"]

    # The identity covers the code: the same code again is the same package; edited
    # code is another one.
    again = _run([*create], work, tmp_path / "again").stdout
    assert again.split()[2] == digest
    (work / "custom_features.py").write_text(MODULE + "\n# scaled the same, said otherwise\n")
    edited = _run([*create], work, tmp_path / "edited").stdout
    assert edited.split()[2] != digest


def test_only_modules_that_are_not_installed_count_as_the_users_own(tmp_path: Path) -> None:
    assert not code.is_local("sklearn.linear_model._logistic")
    assert not code.is_local("numpy")
    assert not code.is_local("collections")
    assert code.is_local("__main__")
    source = tmp_path / "mine_for_the_test.py"
    source.write_text("VALUE = 1\n")
    spec = importlib.util.spec_from_file_location("mine_for_the_test", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mine_for_the_test"] = module
    try:
        spec.loader.exec_module(module)
        assert code.is_local("mine_for_the_test")
    finally:
        del sys.modules["mine_for_the_test"]
    # A model of installed classes only ships nothing, and is pickled as before.
    fitted = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    assert code.local_modules(fitted) == ()


def test_a_shipped_package_is_hashed_over_every_source_file_under_it(tmp_path: Path) -> None:
    package = tmp_path / "team_pkg_for_the_test"
    (package / "0sub").mkdir(parents=True)  # sorts before __init__.py
    (package / "__init__.py").write_text("")
    (package / "0sub" / "rules.py").write_text("LIMIT = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("team_pkg_for_the_test")
        first = code.source_sha256(["team_pkg_for_the_test"], b"")
        (package / "0sub" / "rules.py").write_text("LIMIT = 2\n")
        assert code.source_sha256(["team_pkg_for_the_test"], b"") != first
    finally:
        sys.path.remove(str(tmp_path))
        del sys.modules["team_pkg_for_the_test"]
