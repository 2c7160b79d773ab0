"""GET /evidence over real HTTP: the cumulative counts the operator's judge reads.

Every figure is checked against what moved it (requests sent, rows sent) and against
the same server's /metrics, which counts the same answers with the same clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import local_http
import pytest
from pitstop.packaging import latency
from prometheus_client.parser import text_string_to_metric_families
from serving_cluster import KEYS, Cluster
from serving_harness import Server, fraud_row, metric, wait_for

pytestmark = pytest.mark.serving


def evidence(url: str, key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = local_http.get(f"{url}/evidence", timeout=10, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def post(url: str, body: object, headers: dict[str, str] | None = None) -> int:
    return local_http.post(f"{url}/predict", json=body, headers=headers, timeout=10).status_code


def from_metrics(text: str) -> tuple[int, int, dict[float, int], dict[str, int]]:
    """/predict answers, 5xx answers, cumulative latency buckets and shadow outcomes."""
    requests = errors = 0
    buckets: dict[float, int] = {}
    shadow: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "pitstop_requests_total" and labels["endpoint"] == "predict":
                requests += int(sample.value)
                errors += int(sample.value) if labels["code"].startswith("5") else 0
            elif (
                sample.name == "pitstop_request_duration_seconds_bucket"
                and labels["endpoint"] == "predict"
            ):
                buckets[float(labels["le"])] = int(sample.value)
            elif sample.name == "pitstop_shadow_requests_total":
                shadow[labels["outcome"]] = int(sample.value)
    return requests, errors, buckets, shadow


def at_rest(url: str) -> tuple[dict[str, Any], str]:
    """/evidence and /metrics read with no /predict answer counted in between (the
    evidence is read on both sides of the scrape and must not have moved)."""

    def read() -> tuple[dict[str, Any], str] | None:
        first = evidence(url)
        text = local_http.get(f"{url}/metrics", timeout=10).text
        second = evidence(url)
        return (first, text) if first["predict"] == second["predict"] else None

    return wait_for(read, 30, "a quiet moment between reads")


def latency_total(body: dict[str, Any]) -> int:
    return sum(body["predict"]["latency"]["counts"].values())


def test_the_answer_has_the_contracts_shape_and_a_scrape_key_reads_it(cluster: Cluster) -> None:
    # Auth is required there: a scrape-only key (what Prometheus would hold) reads it.
    body = evidence(cluster.guarded.url, KEYS["scrape-prometheus"])
    assert body["version"] == 1
    assert re.fullmatch(r"[0-9a-f]{16}", body["instance"])
    assert set(body) == {
        "version", "instance", "predict", "drift", "shadow", "quality", "shadow_quality", "model",
    }  # fmt: skip
    # What is served, for the operator's archive and retraining parameters.
    assert body["model"]["digest"].startswith("sha256:")
    assert set(body["model"]["data"]) == {"uri", "sha256", "rows"}
    assert set(body["predict"]) == {"requests", "errors", "latency"}
    assert body["predict"]["latency"]["schema"] == 5
    assert set(body["drift"]) == {"rows", "features"}
    assert set(body["shadow"]) == {"agree", "disagree", "error"}
    # A classifier's labelled rows (see test_serving_feedback); keys added in version 1.
    assert set(body["quality"]) == set(body["shadow_quality"]) == {"rows", "correct"}


def test_the_instance_id_is_stable_across_reads_and_differs_between_workers(
    cluster: Cluster,
) -> None:
    ids = {evidence(cluster.open.url)["instance"] for _ in range(3)}
    assert len(ids) == 1
    assert evidence(cluster.same.url)["instance"] not in ids


def test_requests_errors_and_latency_move_with_answers(cluster: Cluster) -> None:
    url = cluster.open.url
    before = evidence(url)
    statuses = [post(url, fraud_row()) for _ in range(5)]
    statuses += [post(url, fraud_row(amount="x")) for _ in range(2)]
    statuses.append(local_http.get(f"{url}/predict", timeout=10).status_code)
    assert statuses == [200] * 5 + [422] * 2 + [405]
    after = evidence(url)
    assert after["predict"]["requests"] - before["predict"]["requests"] == 8
    assert after["predict"]["errors"] == before["predict"]["errors"]  # 4xx are no errors
    assert latency_total(after) - latency_total(before) == 8
    counts = after["predict"]["latency"]["counts"]
    assert all(n > 0 for n in counts.values())  # sparse: empty buckets are left out
    assert after["predict"]["latency"]["schema"] == 5
    assert all(latency.min_index() <= int(i) <= latency.max_index() for i in counts)


def test_5xx_answers_are_errors(cluster: Cluster) -> None:
    url = cluster.broken.url  # every output is NaN: refused with a 500
    before = evidence(url)
    assert post(url, {"a": 0.1, "b": 0.2, "c": 0.3}) == 500
    assert post(url, {"a": "x", "b": 0.2, "c": 0.3}) == 422
    after = evidence(url)
    assert after["predict"]["requests"] - before["predict"]["requests"] == 2
    assert after["predict"]["errors"] - before["predict"]["errors"] == 1


def test_counts_agree_with_the_metrics_of_the_same_answers(cluster: Cluster) -> None:
    url = cluster.open.url
    for amount in (80.0, 100.0, 120.0):
        assert post(url, [fraud_row(amount=amount)] * 3) == 200
    body, text = at_rest(url)
    requests, errors, buckets, shadow = from_metrics(text)
    assert body["predict"]["requests"] == requests == latency_total(body)
    assert body["predict"]["errors"] == errors
    assert body["shadow"] == shadow
    # The same time goes to both histograms: at every classic bound b, the evidence
    # counts up to the schema-3 bucket below b, and up to the one holding b, bracket
    # the classic count.
    counts = {int(i): n for i, n in body["predict"]["latency"]["counts"].items()}
    for bound, classic in buckets.items():
        if math.isinf(bound):
            assert classic == requests
            continue
        holding = latency.index(bound)
        below = sum(n for i, n in counts.items() if i < holding)
        assert below <= classic <= below + counts.get(holding, 0)


def test_mirror_copies_received_are_counted_like_any_answer(cluster: Cluster) -> None:
    url = cluster.same.url
    before = evidence(url)["predict"]["requests"]
    assert post(url, fraud_row(), {"X-Pitstop-Mirror": "1"}) == 200
    body, text = at_rest(url)
    assert body["predict"]["requests"] == before + 1
    assert body["predict"]["requests"] == from_metrics(text)[0]


def test_drift_counts_every_row_per_feature_in_the_profiles_bins(cluster: Cluster) -> None:
    url = cluster.open.url
    profile = local_http.get(f"{url}/signature", timeout=10).json()["profile"]
    before = evidence(url)["drift"]
    rows = [fraud_row(country="us", amount=100.0 + i) for i in range(20)]
    assert post(url, rows) == 200
    after = evidence(url)["drift"]
    assert after["rows"] - before["rows"] == 20
    assert list(after["features"]) == [feature["name"] for feature in profile["features"]]
    for feature in profile["features"]:
        shares = (feature["numeric"] or feature["categorical"])["fractions"]
        counts = after["features"][feature["name"]]
        assert counts["expected"] == shares
        assert len(counts["counts"]) == len(shares)
        assert sum(counts["counts"]) == after["rows"]  # no value was missing
        old = before["features"][feature["name"]]["counts"]
        assert sum(counts["counts"]) - sum(old) == 20
    country = profile["features"][[f["name"] for f in profile["features"]].index("country")]
    us = country["categorical"]["categories"].index("us")
    moved = [
        new - old
        for new, old in zip(
            after["features"]["country"]["counts"],
            before["features"]["country"]["counts"],
            strict=True,
        )
    ]
    assert moved == [20 if code == us else 0 for code in range(len(moved))]


def test_generated_load_is_answered_and_counted_but_is_not_drift_evidence(
    cluster: Cluster,
) -> None:
    url = cluster.open.url
    before = evidence(url)
    rows = [fraud_row(country="us") for _ in range(5)]
    assert post(url, rows, {"X-Pitstop-Generated": "1"}) == 200
    after = evidence(url)
    assert after["predict"]["requests"] == before["predict"]["requests"] + 1
    assert after["drift"]["rows"] == before["drift"]["rows"]  # drift is real users' inputs


def test_evidence_reads_are_counted_as_their_own_endpoint(cluster: Cluster) -> None:
    url = cluster.open.url

    def reads() -> float:
        text = local_http.get(f"{url}/metrics", timeout=10).text
        return metric(text, "pitstop_requests_total", endpoint="evidence", code="200")

    before = reads()
    evidence(url)
    evidence(url)
    assert reads() == before + 2


@pytest.fixture(scope="module")
def unloaded(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose package cannot be loaded: it never becomes ready."""
    server = Server(
        cluster.bentos["fraud:1"],
        {
            "BENTOML_HOME": str(cluster.home),
            "BENTOML_DO_NOT_TRACK": "true",
            "PITSTOP_MODEL": "absent:1",
        },
        tmp_path_factory.mktemp("unloaded") / "server.log",
    )
    try:
        wait_for(
            lambda: local_http.get(f"{server.url}/readyz", timeout=2).json()["status"] == "failed",
            90,
            "the package load failing",
        )
        yield server
    finally:
        server.stop()


def test_evidence_is_answered_before_the_model_is_loaded(unloaded: Server) -> None:
    body = evidence(unloaded.url)
    assert "drift" not in body
    assert body["predict"] == {
        "requests": 0,
        "errors": 0,
        "latency": {"schema": 5, "counts": {}},
    }
    assert body["shadow"] == {"agree": 0, "disagree": 0, "error": 0}
    assert post(unloaded.url, fraud_row()) == 503
    after = evidence(unloaded.url)["predict"]
    assert (after["requests"], after["errors"], sum(after["latency"]["counts"].values())) == (
        1,
        1,
        1,
    )
