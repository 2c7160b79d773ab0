"""The bodies POSTed for a transition: JSON for programs, Slack's incoming-webhook
message for people. Pure."""

from __future__ import annotations

from typing import Any

from pitstop.api.status import MetricResult
from pitstop.notify.transitions import Transition

_VERB = {
    "RolloutStarted": "rollout started", "StepAdvanced": "step advanced",
    "Held": "held for evidence", "Promoted": "promoted", "RolledBack": "rolled back",
    "Aborted": "aborted",
}  # fmt: skip
_ICON = {"RolledBack": ":rotating_light:", "Aborted": ":warning:", "Held": ":hourglass:",
         "Promoted": ":white_check_mark:"}  # fmt: skip


def body(transition: Transition, format_: str) -> dict[str, Any]:
    return slack(transition) if format_ == "Slack" else as_json(transition)


def as_json(t: Transition) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "namespace": t.namespace,
        "name": t.name,
        "strategy": t.strategy,
        "version": t.version,
        "revision": t.revision,
        "stableVersion": t.stable_version,
        "message": t.message,
        "time": t.time.isoformat(),
        "metric": _metric(t.metric) if t.metric is not None else None,
        "analysis": [_metric(m) for m in t.metrics],
    }


def slack(t: Transition) -> dict[str, Any]:
    head = f"{_ICON.get(t.kind, ':information_source:')} *{t.namespace}/{t.name}*: version " \
           f"{t.version} {_VERB[t.kind]}"  # fmt: skip
    lines = [head, t.message]
    if t.metric is not None:
        lines.append(f"decided on {_sentence(t.metric)}")
    return {"text": "\n".join(line for line in lines if line)}


def _metric(m: MetricResult) -> dict[str, Any]:
    return {
        "name": m.name, "verdict": m.verdict, "value": m.value, "stableValue": m.stable_value,
        "lower": m.lower, "upper": m.upper, "limit": m.limit, "requests": m.requests,
    }  # fmt: skip


def _sentence(m: MetricResult) -> str:
    text = f"{m.name}"
    if m.value is not None:
        text += f" {m.value:.4g}"
    if m.stable_value is not None:
        text += f" (stable {m.stable_value:.4g})"
    if m.lower is not None or m.upper is not None:
        text += f", interval [{_num(m.lower)}, {_num(m.upper)}]"
    if m.limit:
        text += f", limit {m.limit}"
    if m.requests:
        text += f", {m.requests:,.0f} requests"
    return text


def _num(x: float | None) -> str:
    return "?" if x is None else f"{x:.4g}"
