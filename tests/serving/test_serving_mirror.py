"""Shadow mirroring between real servers: agreement, disagreement, shadow errors."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import local_http
import pytest
from pitstop.packaging.bento import default_template
from serving_cluster import Cluster
from serving_harness import fraud_row, metric, wait_for

pytestmark = pytest.mark.serving


def shadow_counts(cluster: Cluster) -> dict[str, float]:
    text = local_http.get(f"{cluster.open.url}/metrics").text
    return {
        outcome: metric(text, "pitstop_shadow_requests_total", outcome=outcome)
        for outcome in ("agree", "disagree", "error")
    }


def mirror_to(cluster: Cluster, url: str, percent: float = 100, timeout: float = 2) -> None:
    cluster.mirror_file.write_text(
        json.dumps({"url": url, "percent": percent, "timeoutSeconds": timeout})
    )


def mirrored(cluster: Cluster, outcome: str, at_least: float) -> None:
    """Send requests until the change in mirror settings is seen and counted."""

    def counted() -> bool:
        response = local_http.post(f"{cluster.open.url}/predict", json=fraud_row(), timeout=10)
        assert response.status_code == 200
        return shadow_counts(cluster)[outcome] >= at_least

    wait_for(counted, 30, f"{outcome} mirror outcomes to reach {at_least}")


@pytest.fixture
def mirror_off(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.mirror_file.write_text("{}")


@pytest.mark.usefixtures("mirror_off")
def test_the_same_model_agrees(cluster: Cluster) -> None:
    before = shadow_counts(cluster)
    mirror_to(cluster, f"{cluster.same.url}/predict")
    mirrored(cluster, "agree", before["agree"] + 5)
    assert shadow_counts(cluster)["disagree"] == before["disagree"]


@pytest.mark.usefixtures("mirror_off")
def test_a_different_model_disagrees(cluster: Cluster) -> None:
    before = shadow_counts(cluster)
    mirror_to(cluster, f"{cluster.other.url}/predict")
    mirrored(cluster, "disagree", before["disagree"] + 5)
    text = local_http.get(f"{cluster.open.url}/metrics").text
    assert metric(text, "pitstop_shadow_duration_seconds_count") > 0


@pytest.mark.usefixtures("mirror_off")
def test_a_hanging_shadow_is_an_error_and_clients_still_get_answers(cluster: Cluster) -> None:
    # A socket that listens but never answers: connections complete, replies never come.
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        port = hanging.getsockname()[1]
        before = shadow_counts(cluster)
        mirror_to(cluster, f"http://127.0.0.1:{port}/predict", timeout=0.2)
        mirrored(cluster, "error", before["error"] + 1)


@pytest.mark.usefixtures("mirror_off")
def test_mirror_percent_samples_requests(cluster: Cluster) -> None:
    mirror_to(cluster, f"{cluster.same.url}/predict", percent=100)
    mirrored(cluster, "agree", shadow_counts(cluster)["agree"] + 1)
    mirror_to(cluster, f"{cluster.same.url}/predict", percent=10)
    # The new percent is picked up within a second; after that, 40 requests make 4 copies.
    wait_for(lambda: _settles(cluster), 30, "10 % sampling")


def _settles(cluster: Cluster) -> bool:
    start = shadow_counts(cluster)["agree"]
    for _ in range(40):
        local_http.post(f"{cluster.open.url}/predict", json=fraud_row(), timeout=10)
    return bool(
        wait_for(lambda: shadow_counts(cluster)["agree"] >= start + 4, 10, "copies counted")
        and shadow_counts(cluster)["agree"] <= start + 5
    )


def test_a_slow_shadow_holds_at_most_the_byte_bound_of_large_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies are bounded in bytes, not only in number: 400 copies of 64 KiB requests
    (and answers of ours as large) to a shadow that never reads hold at most the bound;
    the rest are dropped and counted. The count bound alone (1,024) would hold 50 MiB."""
    sys.path.insert(0, str(default_template()))
    from pitstop_serving import metrics, mirror

    limit = 1 << 20
    monkeypatch.setattr(mirror, "QUEUE_BYTES", limit)
    silent = socket.socket()  # listens, never accepts: the kernel's buffers fill, then ours
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    config = tmp_path / "mirror.json"
    port = silent.getsockname()[1]
    config.write_text(json.dumps({"url": f"http://127.0.0.1:{port}/predict", "percent": 100}))
    found = metrics.Metrics()
    copies = mirror.Mirror(config, found)
    body, ours = b"[" + b"1," * 32_000 + b"1]", b"x" * 65_536

    async def send() -> int:
        copies.refresh(0.0)
        most = 0
        for _ in range(400):
            copies.submit(body, b"", ours)
            await asyncio.sleep(0)  # flushes and connects run between requests
            connection = copies._connection
            most = max(most, copies._out_bytes + (connection.held() if connection else 0))
        return most

    try:
        most = asyncio.run(send())
    finally:
        silent.close()
    assert found.shadow_dropped.series[()].value > 0
    assert most <= limit
