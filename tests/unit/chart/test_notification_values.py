"""The chart hands the operator its own webhook: a URL, or one kept in a Secret."""

from __future__ import annotations

from typing import Any

from chart import render


def env(*values: str) -> dict[str, Any]:
    (deployment,) = [o for o in render(*values) if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_no_url_no_operator_webhook() -> None:
    assert "PITSTOP_NOTIFY_URL" not in env()


def test_a_url_in_a_secret_is_read_by_the_kubelet_not_written_in_the_pod_spec() -> None:
    found = env("--set", "notifications.urlSecret.name=slack",
                "--set", "notifications.urlSecret.key=url", "--set", "notifications.format=Slack")  # fmt: skip
    assert found["PITSTOP_NOTIFY_URL"] == {"secretKeyRef": {"name": "slack", "key": "url"}}
    assert found["PITSTOP_NOTIFY_FORMAT"] == "Slack"


def test_a_plain_url_is_passed_as_it_is() -> None:
    assert env("--set", "notifications.url=https://hooks.example/x")["PITSTOP_NOTIFY_URL"] == (
        "https://hooks.example/x"
    )
