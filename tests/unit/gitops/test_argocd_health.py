"""The Argo CD health check: every phase maps to what an Argo Rollouts user expects."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from gitops_health import SCRIPT, argocd_health


def md(phase: str | None = None, generation: int = 3, observed: int | None = 3,
       message: str = "", conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    obj: dict[str, Any] = {"metadata": {"name": "fraud", "generation": generation}}
    if phase is not None or conditions is not None:
        status: dict[str, Any] = {"phase": phase, "message": message,
                                  "conditions": conditions or []}  # fmt: skip
        if observed is not None:
            status["observedGeneration"] = observed
        obj["status"] = {k: v for k, v in status.items() if v is not None}
    return obj


@pytest.mark.parametrize(
    ("phase", "health"),
    [
        ("Pending", "Progressing"),
        ("Building", "Progressing"),
        ("Deploying", "Progressing"),
        ("Progressing", "Progressing"),
        ("Paused", "Suspended"),
        ("Healthy", "Healthy"),
        ("Degraded", "Degraded"),
        ("RolledBack", "Degraded"),
        ("Failed", "Degraded"),
        ("Decommissioned", "Suspended"),  # nothing serves, by request: not broken
    ],
)
def test_each_phase_has_its_health_and_the_message_says_why(phase: str, health: str) -> None:
    status, message = argocd_health(md(phase, message="step 2 of 3"))
    assert status == health
    assert message == f"{phase}: step 2 of 3"


def test_no_status_yet_is_progressing() -> None:
    assert argocd_health(md()) == ("Progressing", "Waiting for the Pitstop operator")


@pytest.mark.parametrize("observed", [2, None])
def test_a_spec_the_operator_has_not_seen_is_progressing_even_when_healthy(
    observed: int | None,
) -> None:
    status, message = argocd_health(md("Healthy", generation=3, observed=observed))
    assert status == "Progressing"
    assert "observe generation 3" in message


def test_failing_reconciles_are_degraded_whatever_the_phase() -> None:
    failing = {"type": "Reconciled", "status": "False", "reason": "ReconcileError",
               "message": "Service IP range exhausted"}  # fmt: skip
    status, message = argocd_health(md("Healthy", conditions=[failing]))
    assert status == "Degraded"
    assert message == "ReconcileError: Service IP range exhausted"
    fine = {**failing, "status": "True", "reason": "Reconciled"}
    assert argocd_health(md("Healthy", conditions=[fine]))[0] == "Healthy"


def test_the_argocd_cm_snippet_carries_the_script_verbatim() -> None:
    snippet = yaml.safe_load((SCRIPT.parent / "argocd-cm.yaml").read_text())
    assert snippet["kind"] == "ConfigMap"
    assert snippet["metadata"]["name"] == "argocd-cm"
    key = "resource.customizations.health.pitstop.dev_ModelDeployment"
    assert snippet["data"][key] == SCRIPT.read_text()
