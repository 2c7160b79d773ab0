"""The serving pods of one revision, found through the API by revision label."""

from __future__ import annotations

from pitstop.k8s.client import KubeClient
from pitstop.rendering import labels


def ready_addresses(
    kube: KubeClient, namespace: str, deployment: str, revision: str
) -> dict[str, str]:
    """Ready pods of `revision` by name -> base URL of their model server."""
    selector = f"{labels.DEPLOYMENT}={deployment},{labels.REVISION}={revision}"
    found: dict[str, str] = {}
    for pod in kube.list_pods(namespace, selector):
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if ready and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            found[pod["metadata"]["name"]] = f"http://{status['podIP']}:{labels.SERVING_PORT}"
    return found
