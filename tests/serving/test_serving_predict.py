"""POST /predict over real HTTP: valid rows, batches, and every kind of bad input."""

from __future__ import annotations

import math

import httpx
import local_http
import pytest
from serving_cluster import Cluster
from serving_harness import fraud_row

pytestmark = pytest.mark.serving


def post(cluster: Cluster, body: object = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return local_http.post(f"{cluster.open.url}/predict", content=content, timeout=10)
    return local_http.post(f"{cluster.open.url}/predict", json=body, timeout=10)


def test_one_row_gets_a_known_class_and_probabilities_summing_to_one(cluster: Cluster) -> None:
    response = post(cluster, fraud_row())
    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] in (["fraud"], ["ok"])
    [probabilities] = body["probabilities"]
    assert len(probabilities) == 2
    assert math.isclose(sum(probabilities), 1.0)


def test_probabilities_follow_the_signature_class_order(cluster: Cluster) -> None:
    classes = local_http.get(f"{cluster.open.url}/signature").json()["signature"]["output"][
        "classes"
    ]
    body = post(cluster, fraud_row(amount=200.0, is_new=True)).json()
    [probabilities] = body["probabilities"]
    assert body["predictions"] == [classes[probabilities.index(max(probabilities))]]
    assert body["predictions"] == ["fraud"]


def test_a_batch_gets_one_prediction_per_row(cluster: Cluster) -> None:
    rows = [fraud_row(amount=60.0), fraud_row(amount=140.0, is_new=True), fraud_row()]
    body = post(cluster, rows).json()
    assert len(body["predictions"]) == 3
    assert body["predictions"][:2] == ["ok", "fraud"]


def test_a_batch_over_the_limit_is_413(cluster: Cluster) -> None:
    response = local_http.post(
        f"{cluster.guarded.url}/predict",
        json=[fraud_row()] * 4,
        headers={"Authorization": "Bearer alice-secret-key-1"},
    )
    assert response.status_code == 413
    assert "at most 3 rows" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in fraud_row().items() if k != "count"}, "count"),
        (fraud_row(amount="120"), "amount"),
        (fraud_row(count=2.5), "count"),
        (fraud_row(country="xx"), "country"),
        (fraud_row(is_new="yes"), "is_new"),
        (fraud_row(amount=None), "amount"),
        (fraud_row(extra=1), "(unknown)"),
        ([fraud_row(), fraud_row(country=3)], "country"),
    ],
)
def test_invalid_rows_are_422_naming_the_field(cluster: Cluster, body: object, field: str) -> None:
    response = post(cluster, body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert field in [problem["field"] for problem in detail]


def test_the_row_index_of_a_bad_batch_row_is_reported(cluster: Cluster) -> None:
    detail = post(cluster, [fraud_row(), fraud_row(country=3)]).json()["detail"]
    assert detail[0]["row"] == 1


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"", 400), (b'{"amount": 1', 400), (b"not json", 400), (b"42", 422), (b"[]", 422)],
)
def test_malformed_bodies_are_4xx_not_500(cluster: Cluster, content: bytes, status: int) -> None:
    assert post(cluster, content=content).status_code == status


def test_nan_is_not_a_number_the_model_accepts(cluster: Cluster) -> None:
    content = b'{"amount": NaN, "count": 1, "country": "de", "is_new": false}'
    assert post(cluster, content=content).status_code in (400, 422)


def test_get_on_predict_is_405(cluster: Cluster) -> None:
    assert local_http.get(f"{cluster.open.url}/predict").status_code == 405


def test_request_id_is_honoured_and_otherwise_generated(cluster: Cluster) -> None:
    given = local_http.post(
        f"{cluster.open.url}/predict", json=fraud_row(), headers={"X-Request-ID": "abc-123"}
    )
    assert given.headers["x-request-id"] == "abc-123"
    generated = post(cluster, fraud_row()).headers["x-request-id"]
    assert generated
    assert generated != post(cluster, fraud_row()).headers["x-request-id"]


def test_answers_carry_the_servers_own_time(cluster: Cluster) -> None:
    # A mirroring primary reads this header as the shadow's latency.
    for response in (post(cluster, fraud_row()), post(cluster, fraud_row(amount="x"))):
        name, _, value = response.headers["server-timing"].partition(";dur=")
        assert name == "app"
        assert float(value) >= 0


def test_health_endpoints_and_signature(cluster: Cluster) -> None:
    assert local_http.get(f"{cluster.open.url}/livez").status_code == 200
    assert local_http.get(f"{cluster.open.url}/readyz").json() == {"status": "ready"}
    described = local_http.get(f"{cluster.open.url}/signature").json()
    assert described["name"] == "fraud"
    assert described["digest"].startswith("sha256:")
    assert [f["name"] for f in described["signature"]["features"]] == [
        "amount",
        "count",
        "country",
        "is_new",
    ]
