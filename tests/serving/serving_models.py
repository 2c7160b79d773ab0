"""Small models the serving tests package and serve, built in a child process.

Run as `python serving_models.py` with BENTOML_HOME pointing at a scratch store: it
trains, packages and builds bentos there and prints the tags as JSON. A child
process, because BentoML fixes its home directory at import time and the test
process must not touch the user's store.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from pitstop.packaging import bento, package
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

COUNTRIES = ["de", "fr", "us"]


def fraud_frame(rows: int, seed: int) -> pd.DataFrame:
    """Training-like data: amount ~ N(100, 20), the label mostly follows amount."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100.0, 20.0, rows),
            "count": rng.integers(0, 10, rows),
            "country": rng.choice(COUNTRIES, rows),
            "is_new": rng.random(rows) < 0.3,
        }
    )
    score = (frame.amount - 100) / 20 + frame.is_new + rng.normal(0, 0.5, rows)
    frame["label"] = np.where(score > 0.5, "fraud", "ok")
    return frame


def fraud_model(frame: pd.DataFrame, flip: bool = False) -> object:
    features = frame.drop(columns="label")
    labels = frame.label
    if flip:
        labels = labels.map({"fraud": "ok", "ok": "fraud"})
    columns = make_column_transformer(
        (OneHotEncoder(), ["country"]),
        (StandardScaler(), ["amount", "count"]),
        ("passthrough", ["is_new"]),
    )
    return make_pipeline(columns, LogisticRegression()).fit(features, labels)


def broken_model() -> tuple[object, pd.DataFrame]:
    """A fitted logistic regression whose coefficients are NaN: every output is NaN."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, frame.a > 0)
    model.coef_[:] = np.nan
    return model, frame


def price_frame(rows: int, seed: int) -> pd.DataFrame:
    """A regression: price = 2 * size + 10 * rooms + noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.normal(80.0, 20.0, rows), "rooms": rng.integers(1, 6, rows)})
    frame["price"] = 2 * frame["size"] + 10 * frame.rooms + rng.normal(0, 5, rows)
    return frame


def main() -> None:
    frame = fraud_frame(2000, seed=1)
    package.create(fraud_model(frame), frame, name="fraud", version="1", target="label")
    package.create(fraud_model(frame, flip=True), frame, name="fraud", version="2", target="label")
    model, data = broken_model()
    package.create(model, data, name="broken", version="1")
    prices = price_frame(500, seed=4)
    regressor = LinearRegression().fit(prices[["size", "rooms"]], prices.price)
    package.create(regressor, prices, name="price", version="1", target="price")
    tags = {name: bento.build(name) for name in ("fraud:1", "fraud:2", "broken:1", "price:1")}
    print(json.dumps(tags))


if __name__ == "__main__":
    main()
