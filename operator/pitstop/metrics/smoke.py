"""Send the smoke test to one ready pod of the candidate, before it gets any traffic
(with the ModelDeployment's own API key when it asks for auth)."""

from __future__ import annotations

from typing import Any

import httpx

from pitstop.analysis import smoke
from pitstop.api import durations
from pitstop.api.resource import ModelDeployment
from pitstop.k8s.client import KubeClient
from pitstop.metrics import answers, keys, pods


def run(kube: KubeClient, md: ModelDeployment, revision: str) -> tuple[bool, str] | None:
    """(passed, message), or None when no pod of the candidate is ready to test yet."""
    settings = md.spec.analysis.smoke_test
    assert settings is not None
    ready = pods.ready_addresses(kube, md.metadata.namespace, md.metadata.name, revision)
    if not ready:
        return None
    url = sorted(ready.values())[0]
    timeout = durations.parse(settings.timeout).total_seconds()
    try:
        auth = keys.headers(kube, md)
    except LookupError as error:
        return False, str(error)
    try:
        with httpx.Client(timeout=timeout, headers=auth) as http:
            description: dict[str, Any] = http.get(f"{url}/signature").raise_for_status().json()
            rows = settings.requests or smoke.generate(description, settings.generated)
            for i, row in enumerate(rows):
                answer = http.post(f"{url}/predict", json=row)
                try:
                    body: Any = answer.json()
                except ValueError:
                    body = answer.text
                problem = smoke.check(description, answer.status_code, body, 1)
                if problem is not None:
                    return False, f"request {i + 1}/{len(rows)} {row}: {problem}"
    except httpx.HTTPError as error:
        return False, answers.describe(error, url)
    return True, f"{len(rows)} requests answered validly"
