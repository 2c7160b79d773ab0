"""The chart exposes the operator's /metrics: a port, scrape annotations, a Service and,
when asked, a ServiceMonitor — and none of it when metrics are off."""

from __future__ import annotations

from typing import Any

from chart import render


def kinds(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def operator_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = kinds(objects, "Deployment")
    template: dict[str, Any] = deployment["spec"]["template"]
    return template


def test_metrics_are_served_and_annotated_for_scraping_by_default() -> None:
    objects = render()
    pod = operator_pod(objects)
    container = pod["spec"]["containers"][0]
    assert "--metrics-address=0.0.0.0:8081" in container["args"]
    assert {"name": "metrics", "containerPort": 8081} in container["ports"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8081"
    (service,) = [
        s for s in kinds(objects, "Service") if s["metadata"]["name"].endswith("-metrics")
    ]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics"}]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert kinds(objects, "ServiceMonitor") == []


def test_a_service_monitor_selects_the_metrics_service_with_the_users_labels() -> None:
    objects = render("--set", "metrics.serviceMonitor.enabled=true",
                     "--set", "metrics.serviceMonitor.labels.release=prom")  # fmt: skip
    (monitor,) = kinds(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    (service,) = [
        s for s in kinds(objects, "Service") if s["metadata"]["name"].endswith("-metrics")
    ]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]


def test_metrics_off_means_no_port_no_annotations_no_service() -> None:
    objects = render(
        "--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"
    )
    pod = operator_pod(objects)
    container = pod["spec"]["containers"][0]
    assert "--metrics-address=" in container["args"]  # empty: the operator serves none
    assert all(p["name"] != "metrics" for p in container["ports"])
    assert "prometheus.io/scrape" not in (pod["metadata"].get("annotations") or {})
    assert kinds(objects, "ServiceMonitor") == []
    assert all(not s["metadata"]["name"].endswith("-metrics") for s in kinds(objects, "Service"))
