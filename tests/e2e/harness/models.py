"""The scenario models: real packaged scikit-learn models with the fraud signature.

`python -m harness.models` (cwd `tests/e2e`, BENTOML_HOME set to a scratch store)
trains, packages and builds them, writes each bento as its image would hold it (the
bento with its models, at $BENTO_PATH; `images/` beside the store) and prints
`{version: that folder}` as JSON: a child process, because BentoML fixes its home at
import time and the test process must not touch the user's store. The test process
imports only the constants and `rows`. Served from such a folder, a model server needs
no store: its BENTOML_HOME is an emptyDir of its pod, as in the cluster.

| version | model |
|---|---|
| 1 GOOD | logistic regression (the fraud pipeline of tests/serving) |
| 2 BETTER | the same pipeline trained on four times the data |
| 3 FLAKY | GOOD wrapped in `faults.Flaky`: every fifth call raises (20% errors) |
| 4 SLOW | GOOD wrapped in `faults.Paced(0.2)`: a p99 far above 1.5x PACED's, even on a busy machine |
| 5 CONTRARY | GOOD with its intercept shifted until it disagrees on ~15% of rows |
| 6 BROKEN | GOOD with NaN coefficients: every answer fails output validation |
| 7 PACED | GOOD wrapped in `faults.Paced(0.01)`: the baseline for SLOW |
| 8 UNRELIABLE | GOOD wrapped in `faults.Unreliable(0.01)`: 1% of calls fail at random |
| 9 UNRELIABLE_TOO | the same model as UNRELIABLE, another version: an A/A candidate |
| 10 SHUFFLED | the GOOD pipeline trained on shuffled labels: as fast and error-free, but wrong |
| 11 DECAYING | GOOD wrapped in `faults.Decaying(100)`: right for 100 calls, then always wrong |
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GOOD, BETTER, FLAKY, SLOW, CONTRARY, BROKEN, PACED = "1", "2", "3", "4", "5", "6", "7"
UNRELIABLE, UNRELIABLE_TOO = "8", "9"
SHUFFLED, DECAYING = "10", "11"
NAME = "fraud"
DISAGREEMENT = 0.15
COUNTRIES = ("de", "fr", "us")  # serving_models.COUNTRIES, without importing BentoML


def image(version: str) -> str:
    """The image a ModelDeployment names for `version`; the kubelet maps it to a bento."""
    return f"e2e.pitstop.test/{NAME}:{version}"


def rows(seed: int = 0, shift: float = 0.0) -> Iterator[dict[str, Any]]:
    """Endless valid request rows drawn like the training data (no drift), or with the
    amount shifted by `shift` standard deviations (drift)."""
    rng = random.Random(seed)
    while True:
        yield {
            "amount": round(rng.gauss(100.0 + 20.0 * shift, 20.0), 3),
            "count": rng.randrange(10),
            "country": rng.choice(COUNTRIES),
            "is_new": rng.random() < 0.3,
        }


def truth(row: dict[str, Any], rng: random.Random) -> str:
    """The true outcome of `row`, drawn as `serving_models.fraud_frame` labels its rows."""
    score = (row["amount"] - 100) / 20 + float(row["is_new"]) + rng.gauss(0.0, 0.5)
    return "fraud" if score > 0.5 else "ok"


def _contrary(good: Any, sample: Any) -> Any:
    """GOOD with a shifted intercept, so that it disagrees on ~DISAGREEMENT of `sample`."""
    import numpy as np

    base = good.predict(sample)
    low, high = 0.0, 10.0
    model = good
    for _ in range(40):
        model = copy.deepcopy(good)
        middle = (low + high) / 2
        model[-1].intercept_ = model[-1].intercept_ + middle
        share = float(np.mean(model.predict(sample) != base))
        if abs(share - DISAGREEMENT) < 0.005:
            break
        low, high = (middle, high) if share < DISAGREEMENT else (low, middle)
    return model


def build(images: Path) -> dict[str, str]:
    import numpy as np
    from pitstop.packaging import bento, build_context, package
    from serving_models import fraud_frame, fraud_model

    from harness import faults

    frame = fraud_frame(2000, seed=1)
    good: Any = fraud_model(frame)  # a fitted Pipeline (typed `object` there)
    features = frame.drop(columns="label")
    broken: Any = copy.deepcopy(good)
    broken[-1].coef_ = np.full_like(broken[-1].coef_, np.nan)
    models = {
        GOOD: good,
        BETTER: fraud_model(fraud_frame(8000, seed=2)),
        FLAKY: faults.Flaky(good, every=5).fit(features),
        SLOW: faults.Paced(good, seconds=0.2).fit(features),
        CONTRARY: _contrary(good, fraud_frame(5000, seed=9).drop(columns="label")),
        BROKEN: broken,
        PACED: faults.Paced(good, seconds=0.01).fit(features),
        UNRELIABLE: faults.Unreliable(good, rate=0.01).fit(features),
        UNRELIABLE_TOO: faults.Unreliable(good, rate=0.01).fit(features),
        SHUFFLED: fraud_model(frame.assign(label=frame.label.sample(frac=1.0, random_state=5)
                                           .to_numpy())),
        DECAYING: faults.Decaying(good, after=100).fit(features),
    }  # fmt: skip
    shutil.rmtree(images, ignore_errors=True)
    folders = {}
    for version, model in models.items():
        package.create(model, frame, name=NAME, version=version, target="label")
        tag = bento.build(f"{NAME}:{version}")
        folders[version] = str(build_context.write(tag, images / f"{NAME}-{version}"))
    return folders


if __name__ == "__main__":
    print(json.dumps(build(Path(os.environ["BENTOML_HOME"]).parent / "images")))
