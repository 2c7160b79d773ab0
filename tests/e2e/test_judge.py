"""The sequential judge end to end (issue 11): real model servers, user traffic through
the gateway, the builtin evidence read from each pod's /evidence.

- A candidate identical to the stable, both failing 1% of requests *at random*, is never
  rolled back, with the README's tight error limit (today's fixed-threshold judge rolled
  back a quarter to half of such rollouts at this traffic); when its single step's pause
  runs out without a verdict it is promoted (onInconclusive: Promote). Five runs.
- A model with almost no user traffic reaches a verdict thanks to `analysis.load`.
- With `serving.auth`, the smoke test, the load test and the generated load present an
  API key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import deployment, gateway, models, realnode
from pitstop.devcluster import testing

pytestmark = pytest.mark.e2e

Start = Callable[..., gateway.Gateway]
ERRORS_TIGHT = {"name": "error-rate", "builtin": "errorRate", "maxAboveStable": 0.005}
ERRORS_MAX = {"name": "error-rate", "builtin": "errorRate", "max": 0.05}


RUNS = 5


def test_identical_candidates_failing_at_random_are_not_rolled_back(
    cluster: testing.DevCluster,
    namespace: str,
    operator: Any,
    gateway_for: Start,
    model_images: dict[str, str],
) -> None:
    """Five A/A rollouts, side by side (five ModelDeployments with a gateway each, a pod
    per revision: ten model servers): the same five chances of a false rollback as one
    after another, in a fraction of the time."""
    if realnode.node() == "real":
        # Tried twice on 2 cores: a candidate's container took 3.5 min to be available
        # and the operator's reads of the pods' evidence timed out, at 20 and 10 req/s.
        pytest.skip("ten model containers and five loads side by side overload a 2-core node")
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "40s"}]}}
    analysis = {"minRequests": 20, "onInconclusive": "Promote", "metrics": [ERRORS_TIGHT]}
    runs = [
        deployment.Deployment(cluster, namespace, f"fraud-{i}", model_images) for i in range(RUNS)
    ]
    for md in runs:
        md.apply(models.UNRELIABLE, canary, analysis=analysis)
        gateway_for(md.name, rps=20)
    for md in runs:
        md.healthy(models.UNRELIABLE, timeout=180)
    for md in runs:
        md.apply(models.UNRELIABLE_TOO, canary, analysis=analysis)

    def ended(s: dict[str, Any]) -> bool:
        promoted = (s.get("stable") or {}).get("version") == models.UNRELIABLE_TOO
        return s.get("phase") == "RolledBack" or (s.get("phase") == "Healthy" and promoted)

    for md in runs:
        done = md.until(f"{md.name}: the A/A candidate promoted or rolled back", ended,
                        timeout=240)  # fmt: skip
        assert done["phase"] == "Healthy", (md.name, done.get("message"))
        assert done["history"][-1]["outcome"] == "Promoted"
        judged = done["analysis"]["metrics"][0]
        assert judged["verdict"] != "Fail"
        assert judged["requests"] >= 20  # it was judged on real answers, not waved through


def test_every_answer_the_candidate_gave_users_is_evidence(
    md: deployment.Deployment, gateway_for: Start
) -> None:
    """The pods' counters are read before traffic moves to the candidate, so its first
    answers count (left to the first look, a second of them would be the baseline)."""
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "5m"}]}}
    analysis = {"minRequests": 100_000, "metrics": [ERRORS_MAX]}  # held: never settles
    md.apply(models.GOOD, canary, analysis=analysis)
    load = gateway_for(rps=20)
    md.healthy(models.GOOD)
    md.apply(models.BETTER, canary, analysis=analysis)
    md.cluster.wait("40 users' answers from the candidate",
                    lambda: len(load.answered(version=models.BETTER)) >= 40)  # fmt: skip
    load.stop()
    answered = len([r for r in load.answered(version=models.BETTER) if r.status])

    def counted(s: dict[str, Any]) -> bool:
        metrics = (s.get("analysis") or {}).get("metrics") or [{}]
        return (metrics[0].get("requests") or 0) >= answered

    md.until(f"all {answered} answers counted as evidence", counted, timeout=30)


def test_a_model_without_traffic_reaches_a_verdict_on_generated_load(
    md: deployment.Deployment, gateway_for: Start
) -> None:
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "5m"}]}}
    analysis = {"minRequests": 50, "metrics": [ERRORS_MAX], "load": {"requestsPerSecond": 20}}
    md.apply(models.GOOD, canary, analysis=analysis)
    load = gateway_for(rps=1)
    md.healthy(models.GOOD)
    md.apply(models.BETTER, canary, analysis=analysis)
    done = md.healthy(models.BETTER, timeout=150)

    assert done["history"][-1]["outcome"] == "Promoted"
    users = len(load.answered(version=models.BETTER))
    assert users < 50  # users alone could not have given minRequests before the pause ran out
    assert done["analysis"]["generated"] >= 50
    # The promotion came from a Pass on generated requests, not from the pause running out.
    events = md.get("events", "--field-selector", "involvedObject.name=fraud")["items"]
    assert not [e for e in events if e["reason"] == "PromotedWithoutVerdict"]


def test_authenticated_model_is_smoke_tested_and_loaded_with_its_own_key(
    md: deployment.Deployment, cluster: testing.DevCluster, kubelet_emulator: Any
) -> None:
    cluster.kubectl("create", "secret", "generic", "fraud-keys", "-n", md.namespace,
                    "--from-literal=pitstop=s3cr3t-key-for-tests")  # fmt: skip
    serving = {"replicas": 1, "auth": {"apiKeysSecret": "fraud-keys"}}
    canary = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "5m"}]}}
    analysis: dict[str, Any] = {
        "minRequests": 50, "smokeTest": {"generated": 10}, "metrics": [ERRORS_MAX],
        "load": {"requestsPerSecond": 20},
        "loadTest": {"requestsPerSecond": 10, "concurrency": 2, "duration": "3s"},
    }  # fmt: skip
    md.apply(models.GOOD, canary, serving=serving, analysis=analysis)
    md.healthy(models.GOOD)
    md.apply(models.BETTER, canary, serving=serving, analysis=analysis)
    done = md.healthy(models.BETTER, timeout=150)

    assert done["history"][-1]["outcome"] == "Promoted"
    assert done["analysis"]["smoke"]["passed"], done["analysis"]["smoke"]
    # Without the key every answer would be a 401: the load test presented it.
    assert done["analysis"]["loadTest"]["passed"], done["analysis"]["loadTest"]
    assert done["analysis"]["loadTest"]["errorRate"] == 0
