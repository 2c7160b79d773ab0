"""Metrics, drift scores, structured logs, and refusal of invalid model outputs."""

from __future__ import annotations

import json

import local_http
import numpy as np
import pytest
from serving_cluster import Cluster
from serving_harness import fraud_row, metric, wait_for

pytestmark = pytest.mark.serving


def scrape(url: str) -> str:
    return local_http.get(f"{url}/metrics", timeout=10).text


def test_a_broken_model_never_returns_its_output(cluster: Cluster) -> None:
    url = cluster.broken.url
    before = metric(scrape(url), "pitstop_output_validation_failures_total", reason="not_finite")
    response = local_http.post(f"{url}/predict", json={"a": 0.1, "b": 0.2, "c": 0.3})
    assert response.status_code == 500
    assert "model output refused" in response.json()["error"]
    assert "probabilities" not in response.json()
    after = metric(scrape(url), "pitstop_output_validation_failures_total", reason="not_finite")
    assert after == before + 1


def test_requests_predictions_and_failures_are_counted(cluster: Cluster) -> None:
    url = cluster.open.url
    before = scrape(url)
    local_http.post(f"{url}/predict", json=[fraud_row(amount=200.0, is_new=True)] * 2)
    local_http.post(f"{url}/predict", json=fraud_row(amount="x"))
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("pitstop_requests_total", endpoint="predict", code="200") == 1
    assert delta("pitstop_requests_total", endpoint="predict", code="422") == 1
    assert delta("pitstop_predictions_total", **{"class": "fraud"}) == 2
    assert delta("pitstop_validation_failures_total", field="amount") == 1
    assert delta("pitstop_request_duration_seconds_count", endpoint="predict") == 2
    assert metric(after, "pitstop_model_ready") == 1


def test_drift_rises_when_inputs_shift(cluster: Cluster) -> None:
    url = cluster.open.url
    rng = np.random.default_rng(7)

    def send(amounts: np.ndarray) -> None:
        for chunk in np.array_split(amounts, 10):
            rows = [fraud_row(amount=float(a), count=int(rng.integers(0, 10)),
                              country=str(rng.choice(["de", "fr", "us"])),
                              is_new=bool(rng.random() < 0.3)) for a in chunk]  # fmt: skip
            assert local_http.post(f"{url}/predict", json=rows, timeout=10).status_code == 200

    send(rng.normal(100.0, 20.0, 500))  # the training distribution fills the window
    calm = scrape(url)
    send(rng.normal(160.0, 20.0, 500))  # amounts three standard deviations higher
    shifted = scrape(url)
    assert metric(calm, "pitstop_drift_window_rows") == 500
    assert metric(calm, "pitstop_drift_psi", feature="amount") < 0.1
    assert metric(shifted, "pitstop_drift_psi", feature="amount") > 1.0
    assert metric(shifted, "pitstop_drift_psi", feature="count") < 0.1
    assert metric(shifted, "pitstop_drift_psi_max") == metric(
        shifted, "pitstop_drift_psi", feature="amount"
    )


def test_one_json_log_line_per_request_with_its_request_id(cluster: Cluster) -> None:
    local_http.post(
        f"{cluster.open.url}/predict", json=fraud_row(), headers={"X-Request-ID": "log-me-42"}
    )

    def logged() -> dict[str, object] | None:
        for line in cluster.open.log.read_text(errors="replace").splitlines():
            if '"log-me-42"' in line:
                return json.loads(line)  # type: ignore[no-any-return]
        return None

    entry = wait_for(logged, 10, "the request's log line")
    assert entry["status"] == 200
    assert entry["path"] == "/predict"
    assert entry["rows"] == 1
    assert isinstance(entry["duration_ms"], float)
