"""The prometheus provider: one PromQL query over the HTTP API, templated per revision."""

from __future__ import annotations

import math
import os
from typing import Any

import httpx

from pitstop.metrics import answers


def default_address() -> str:
    """The operator-wide Prometheus, when a metric does not name one (read when asked,
    like every other setting from the environment, not frozen at import)."""
    return os.environ.get("PITSTOP_PROMETHEUS_URL", "")


def render(query: str, *, name: str, namespace: str, revision: str, interval: str) -> str:
    for key, value in (("name", name), ("namespace", namespace), ("revision", revision),
                       ("interval", interval)):  # fmt: skip
        query = query.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return query


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def query(address: str, promql: str, timeout: float = 5.0) -> float | None:
    """The single value `promql` returns; None when it returns nothing or NaN, an
    error when it returns several series."""
    if not address:
        raise ValueError(
            "no Prometheus address: set the metric's address or PITSTOP_PROMETHEUS_URL"
        )
    try:
        response = httpx.get(f"{address.rstrip('/')}/api/v1/query", params={"query": promql},
                             timeout=timeout)  # fmt: skip
    except httpx.TransportError as error:  # it does not say where it went
        raise ValueError(answers.describe(error, f"Prometheus at {address}")) from error
    body = _body(response)
    if response.is_error:
        # Prometheus says why in its JSON (a parse error names the character); a proxy
        # in front of it may not.
        said = body.get("error")
        raise ValueError(
            f"{answers.refused(response)}: {said}" if said else answers.refused(response)
        )
    if body.get("status") != "success":
        raise ValueError(f"Prometheus answered {body.get('error', body.get('status'))}")
    result = body["data"]["result"]
    if not result:
        return None
    if body["data"]["resultType"] == "vector":
        if len(result) > 1:
            # Picking one series would judge an arbitrary pod or label set.
            raise ValueError(
                f"the query returned {len(result)} series; aggregate it to one, "
                "e.g. sum(...) or max(...)"
            )
        value = float(result[0]["value"][1])
    else:
        value = float(result[1])
    return None if math.isnan(value) else value
