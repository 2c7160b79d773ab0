"""The harness end to end, before any analysis: real servers answer users through the
gateway while the operator moves traffic, and the template mirrors for a shadow."""

from __future__ import annotations

import local_http
import pytest
from harness import deployment, gateway, kubelet, models, realnode
from pitstop.devcluster import testing
from serving_harness import metric

pytestmark = pytest.mark.e2e

CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "5s"}]}}
SHADOW = {"type": "Shadow", "shadow": {"percent": 100, "duration": "10m", "promote": "Manual"}}


def ok(records: list[gateway.Record]) -> list[gateway.Record]:
    return [r for r in records if r.status == 200]


def shadow_copies(urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        text = local_http.get(f"{url}/metrics", timeout=5).text
        for outcome in ("agree", "disagree", "error"):
            total += metric(text, "pitstop_shadow_requests_total", outcome=outcome)
    return total


def test_canary_then_shadow_on_real_servers(
    cluster: testing.DevCluster,
    md: deployment.Deployment,
    gateway_for: object,
    kubelet_emulator: kubelet.Kubelet | realnode.Pods,
) -> None:
    md.apply(models.GOOD, CANARY)
    md.healthy(models.GOOD)
    load = gateway_for()  # type: ignore[operator]
    cluster.wait("v1 answers users", lambda: len(ok(load.answered(version=models.GOOD))) >= 20)

    # Canary at 50%: one pod each, round-robin over the entry Service's pods.
    md.apply(models.BETTER, CANARY)
    v2 = md.until("a v2 candidate", lambda s: "candidate" in s)["candidate"]["revision"]
    cluster.wait("v2 answers users", lambda: len(ok(load.answered(version=models.BETTER))) >= 20)
    md.healthy(models.BETTER)
    only_v2 = cluster.wait(
        "the gateway follows the entry Service to v2 only",
        lambda: next((c for c in load.changes if c.shares == {v2: 100.0}), None),
    )
    split = next((c for c in load.changes if c.shares.get(v2) == 50.0), None)
    assert split is not None, load.changes
    # Once the data plane follows (`settle`: kube-proxy on a real node).
    during = [r for r in load.answered(since=split.at + load.settle) if r.sent < only_v2.at]
    by_v2 = [r for r in during if r.version == models.BETTER]
    # Round-robin over the pods gives half exactly; kube-proxy picks at random, so half
    # within three standard deviations of a binomial share.
    spread = max(0.1, 3 * (0.25 / len(during)) ** 0.5)
    assert abs(len(by_v2) / len(during) - 0.5) <= spread, (len(by_v2), len(during))
    switched = only_v2.at + load.settle
    cluster.wait("20 answers after the switch", lambda: len(load.answered(since=switched)) >= 20)
    after = load.answered(since=switched)
    assert {r.version for r in after} == {models.BETTER}
    assert ok(after) == after
    # Nobody saw an error during the canary. One snapshot: users keep sending meanwhile.
    answered = load.answered()
    assert ok(answered) == answered

    # Shadow: the stable's own server mirrors every request to the candidate's pod.
    md.apply(models.CONTRARY, SHADOW)
    md.until("shadowing", lambda s: (s.get("candidate") or {}).get("state") == "Shadow")
    stable = [s.url for s in kubelet_emulator.servers({"pitstop.dev/model-version": models.BETTER})]
    assert len(stable) == 1
    # A real kubelet refreshes a mounted ConfigMap (the mirror's) on its pod sync, about
    # a minute after the change: the emulator rewrote it at once.
    cluster.wait("the stable mirrors 50 copies", lambda: shadow_copies(stable) >= 50, timeout=180)
    assert not load.answered(version=models.CONTRARY)  # a shadow never answers users
    text = local_http.get(f"{stable[0]}/metrics", timeout=5).text
    disagree = metric(text, "pitstop_shadow_requests_total", outcome="disagree")
    agree = metric(text, "pitstop_shadow_requests_total", outcome="agree")
    assert 0.02 < disagree / (agree + disagree) < 0.4
