"""API keys (401/403, rotation without restart) and per-key throttling (429)."""

from __future__ import annotations

import httpx
import pytest
from conftest import KEYS, Cluster
from serving_harness import fraud_row, wait_for

pytestmark = pytest.mark.serving


def post(cluster: Cluster, headers: dict[str, str], body: object = None) -> httpx.Response:
    return httpx.post(
        f"{cluster.guarded.url}/predict",
        json=fraud_row() if body is None else body,
        headers=headers,
        timeout=10,
    )


def test_no_key_is_401(cluster: Cluster) -> None:
    response = post(cluster, {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_key_is_403_and_checked_before_validation(cluster: Cluster) -> None:
    assert post(cluster, {"Authorization": "Bearer nope"}).status_code == 403
    assert post(cluster, {"X-API-Key": "nope"}, body={"junk": 1}).status_code == 403


def test_keys_work_as_bearer_or_x_api_key(cluster: Cluster) -> None:
    assert post(cluster, {"Authorization": f"Bearer {KEYS['alice']}"}).status_code == 200
    assert post(cluster, {"X-API-Key": KEYS["alice"]}).status_code == 200


def test_keys_rotate_without_restart(cluster: Cluster) -> None:
    new_key = "carol-secret-key-3"
    (cluster.keys_dir / "carol").write_text(new_key)
    wait_for(
        lambda: post(cluster, {"X-API-Key": new_key}).status_code == 200,
        what="the new key being accepted",
    )
    (cluster.keys_dir / "carol").unlink()
    wait_for(
        lambda: post(cluster, {"X-API-Key": new_key}).status_code == 403,
        what="the removed key being refused",
    )


def test_a_key_over_its_rate_gets_429_with_retry_after(cluster: Cluster) -> None:
    # 1 request/s with a burst of 5: twenty quick requests cannot all pass.
    headers = {"X-API-Key": KEYS["bob"]}
    responses = [post(cluster, headers) for _ in range(20)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    assert int(limited[0].headers["retry-after"]) >= 1
    assert {r.status_code for r in responses} <= {200, 429}
