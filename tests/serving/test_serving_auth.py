"""API keys (401/403, rotation without restart), failing closed when auth is required but
no key is readable (503), per-key throttling (429), and what else a key guards: the
training profile (/signature) and the counters (/metrics, /evidence), which a scrape-only
key may read."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import local_http
import pytest
from pitstop.packaging.bento import default_template
from serving_cluster import KEYS, Cluster
from serving_harness import fraud_row, wait_for

sys.path.insert(0, str(default_template()))
from pitstop_serving import auth, config

pytestmark = pytest.mark.serving


def post(cluster: Cluster, headers: dict[str, str], body: object = None) -> httpx.Response:
    return local_http.post(
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


def get(cluster: Cluster, path: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return local_http.get(f"{cluster.guarded.url}{path}", headers=headers, timeout=10)


@pytest.mark.parametrize("path", ["/signature", "/metrics", "/evidence"])
def test_with_auth_on_the_profile_and_the_counters_need_a_key(cluster: Cluster, path: str) -> None:
    refused = get(cluster, path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "API key" in refused.json()["error"]
    assert get(cluster, path, "nope").status_code == 403
    assert get(cluster, path, KEYS["alice"]).status_code == 200


def test_a_scrape_key_reads_the_counters_and_nothing_else(cluster: Cluster) -> None:
    scrape = KEYS["scrape-prometheus"]
    metrics = get(cluster, "/metrics", scrape)
    assert metrics.status_code == 200
    assert "pitstop_requests_total" in metrics.text
    assert get(cluster, "/evidence", scrape).status_code == 200
    profile = get(cluster, "/signature", scrape)
    assert profile.status_code == 403
    assert "scrape-prometheus may only read /metrics and /evidence" in profile.json()["error"]
    assert post(cluster, {"Authorization": f"Bearer {scrape}"}).status_code == 403


def test_the_probes_stay_open_and_an_open_server_needs_no_key(cluster: Cluster) -> None:
    assert get(cluster, "/livez").status_code == 200
    assert get(cluster, "/readyz").status_code == 200
    for path in ("/signature", "/metrics", "/evidence"):
        assert local_http.get(f"{cluster.open.url}{path}", timeout=10).status_code == 200


def test_the_operator_and_the_template_agree_on_scrape_only_keys() -> None:
    from pitstop.metrics import keys

    assert keys.SCRAPE_PREFIX == auth.SCRAPE_PREFIX
    assert auth.scrape_only("scrape-prometheus")
    assert keys.pick({"scrape-prometheus": "s", "zed": "z ", "alice": ""}) == "z"
    with pytest.raises(LookupError, match="scrape-only"):
        keys.pick({"scrape-prometheus": "s"})


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


@contextlib.contextmanager
def keys_unreadable(cluster: Cluster, how: str) -> Iterator[None]:
    """The guarded server's key directory missing, empty, or holding only a key file
    that cannot be read (a dangling link, as a Secret mid-update could leave); the
    keys are put back afterwards and the server's recovery awaited."""
    folder = cluster.keys_dir
    away = folder.with_name("keys-away")
    folder.rename(away)
    if how != "missing":
        folder.mkdir()
    if how == "unreadable":
        (folder / "alice").symlink_to(folder / "nowhere")
    try:
        yield
    finally:
        if folder.exists():
            shutil.rmtree(folder)
        away.rename(folder)
        wait_for(
            lambda: local_http.get(f"{cluster.guarded.url}/readyz", timeout=5).status_code == 200,
            what="readiness once the keys are back",
        )


@pytest.mark.parametrize("how", ["missing", "empty", "unreadable"])
def test_required_auth_fails_closed_until_keys_are_readable(cluster: Cluster, how: str) -> None:
    # The guarded server is given PITSTOP_API_KEYS_DIR: auth was asked for, so no
    # readable key must never mean "everyone is let in".
    url = cluster.guarded.url
    with keys_unreadable(cluster, how):
        readiness = wait_for(
            lambda: (r := local_http.get(f"{url}/readyz", timeout=5)).status_code == 503 and r,
            what="the server reporting that it has no keys",
        )
        assert readiness.json()["status"] == "no-keys"
        assert str(cluster.keys_dir) in readiness.json()["error"]
        for headers in ({}, {"X-API-Key": KEYS["alice"]}, {"Authorization": "Bearer nope"}):
            refused = post(cluster, headers)
            assert refused.status_code == 503, (headers, refused.text)
            assert refused.headers["content-type"] == "application/json"
            assert "API keys are required" in refused.json()["error"]
            assert int(refused.headers["retry-after"]) >= 1
    # Recovered by itself: the keys are read again and checked again.
    assert post(cluster, {}).status_code == 401
    wait_for(
        lambda: post(cluster, {"X-API-Key": KEYS["alice"]}).status_code == 200,
        what="a valid key being accepted again (its bucket refills at 1/s)",
    )


def test_auth_is_required_exactly_when_the_keys_directory_is_named() -> None:
    named = config.from_environ({"PITSTOP_MODEL": "m:1", "PITSTOP_API_KEYS_DIR": "/keys"})
    assert (named.api_keys_dir, named.auth_required) == (Path("/keys"), True)
    for unset in ({}, {"PITSTOP_API_KEYS_DIR": " "}):
        default = config.from_environ({"PITSTOP_MODEL": "m:1", **unset})
        assert default.api_keys_dir == Path(config.DEFAULT_API_KEYS_DIR)
        assert not default.auth_required


def test_no_keys_means_auth_off_only_when_auth_was_not_asked_for(tmp_path: Path) -> None:
    store = auth.KeyStore(tmp_path / "missing")
    store.refresh(0.0)
    assert (store.enabled, store.problem) == (False, None)


@pytest.mark.parametrize(
    ("layout", "reason"),
    [
        ("missing", "does not exist"),
        ("not a directory", "cannot be read"),
        ("empty", "holds no key file"),
        ("blank key", "no key file in"),
        ("dangling link", "no key file in"),
    ],
)
def test_a_required_store_without_keys_says_why(tmp_path: Path, layout: str, reason: str) -> None:
    folder = tmp_path / "keys"
    if layout == "not a directory":
        folder.write_text("key")
    elif layout != "missing":
        folder.mkdir()
    if layout == "blank key":
        (folder / "alice").write_text("  \n")
    if layout == "dangling link":
        (folder / "alice").symlink_to(folder / "nowhere")
    store = auth.KeyStore(folder, required=True)
    store.refresh(0.0)
    assert not store.enabled
    assert store.problem is not None
    assert store.problem.startswith("API keys are required but none can be read: ")
    assert reason in store.problem
    assert str(folder) in store.problem


def test_a_required_store_recovers_at_its_next_check(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    store = auth.KeyStore(folder, required=True)
    store.refresh(0.0)
    assert store.problem is not None
    folder.mkdir()
    (folder / "alice").write_text("alice-key\n")
    store.refresh(0.5)  # checked at most once a second
    assert store.problem is not None
    store.refresh(1.0)
    assert store.problem is None
    assert store.identify(b"alice-key") == "alice"
    (folder / "alice").unlink()
    store.refresh(2.0)
    assert store.problem is not None
    assert store.identify(b"alice-key") is None
