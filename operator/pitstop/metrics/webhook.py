"""The webhook provider: POST the rollout's context, read {"pass": bool, "value": number?}."""

from __future__ import annotations

from typing import Any

import httpx

from pitstop.metrics import answers


def ask(url: str, context: dict[str, Any], timeout: float = 10.0) -> tuple[bool, float | None]:
    try:
        response = httpx.post(url, json=context, timeout=timeout)
    except httpx.TransportError as error:  # it does not say where it went
        where = httpx.URL(url).copy_with(query=None)  # a token may ride in the query
        raise ValueError(answers.describe(error, f"the webhook {where}")) from error
    if response.is_error:
        raise ValueError(answers.refused(response))
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("pass"), bool):
        raise ValueError('the webhook must answer {"pass": true|false, "value": <number>}')
    value = body.get("value")
    return body["pass"], float(value) if isinstance(value, int | float) else None
