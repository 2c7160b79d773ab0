"""A rollout whose users speak the Open Inference Protocol (V2) only (issue 16).

Users call `POST /v2/models/fraud/infer`, never `/predict`; the operator's judge reads
the same `/evidence` counters, so the candidate's V2 answers are its evidence and a
better model is promoted on them exactly as on native traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from harness import deployment, gateway, models

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
ERRORS = {"name": "error-rate", "builtin": "errorRate", "max": 0.05}
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "60s"}]}}
ANALYSIS = {"interval": "5s", "failureLimit": 1, "minRequests": 20, "metrics": [ERRORS]}
OUTPUTS = ("predictions", "probabilities")


def test_a_canary_judged_on_v2_traffic_is_promoted(
    md: deployment.Deployment, gateway_for: Start
) -> None:
    md.apply(models.GOOD, CANARY, replicas=2, analysis=ANALYSIS)
    load = gateway_for(protocol="v2", model=models.NAME)
    md.healthy(models.GOOD)
    md.cluster.wait(
        "v1 answers V2 users",
        lambda: [r for r in load.answered(version=models.GOOD) if r.status == 200][19:],
    )
    md.apply(models.BETTER, CANARY, replicas=2, analysis=ANALYSIS)
    done = md.healthy(models.BETTER, timeout=150)

    assert done["history"][-1]["version"] == models.BETTER
    assert done["history"][-1]["outcome"] == "Promoted"
    judged = {m["name"]: m for m in done["analysis"]["metrics"]}["error-rate"]
    assert judged["verdict"] == "Pass"
    assert judged["requests"] >= 20  # the candidate's V2 answers were the evidence
    candidate = load.answered(version=models.BETTER)
    assert candidate  # users reached it during the step, in V2
    assert all(r.status == 200 for r in candidate), Counter(r.status for r in candidate)
    # Every answer a pod gave was a V2 answer (none is native: the outputs are named).
    answered = [r for r in load.answered() if r.pod is not None]
    statuses = Counter(r.status for r in answered)
    assert {r.outputs for r in answered if r.status == 200} == {OUTPUTS}, statuses
    # No V2 request was refused: the rest are pods going away (no answer, or 503).
    assert not [code for code in statuses if 400 <= code < 500], statuses
