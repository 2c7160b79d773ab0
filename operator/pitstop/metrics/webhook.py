"""The webhook provider: POST the rollout's context, read {"pass": bool, "value": number?}."""

from __future__ import annotations

from typing import Any

import httpx


def ask(url: str, context: dict[str, Any], timeout: float = 10.0) -> tuple[bool, float | None]:
    response = httpx.post(url, json=context, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("pass"), bool):
        raise ValueError('the webhook must answer {"pass": true|false, "value": <number>}')
    value = body.get("value")
    return body["pass"], float(value) if isinstance(value, int | float) else None
