"""KWOK's configuration: one KwokConfiguration and the stages that play kubelets."""

from __future__ import annotations

from typing import Any

import yaml
from pitstop.devcluster import chaos, stages


def _docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(stages.render(fallback_cidr="127.200.255.0/24")))


def test_config_manages_only_annotated_nodes() -> None:
    config = next(d for d in _docs() if d["kind"] == "KwokConfiguration")

    assert config["options"]["manageNodesWithAnnotationSelector"] == "kwok.x-k8s.io/node=fake"
    assert config["options"]["cidr"] == "127.200.255.0/24"


def test_stages_cover_node_and_pod_lives() -> None:
    names = {d["metadata"]["name"] for d in _docs() if d["kind"] == "Stage"}

    assert names == {
        "node-initialize",
        "node-heartbeat",
        "pod-ready",
        "pod-image-pull-failed",
        "pod-crash-loop",
        "pod-succeed",
        "pod-fail",
        "pod-delete",
    }


def test_pods_end_only_when_annotated() -> None:
    ends = {
        d["metadata"]["name"]: d
        for d in _docs()
        if d["kind"] == "Stage" and d["metadata"]["name"] in ("pod-succeed", "pod-fail")
    }

    for outcome, stage in (("succeed", ends["pod-succeed"]), ("fail", ends["pod-fail"])):
        expressions = stage["spec"]["selector"]["matchExpressions"]
        assert {
            "key": f'.metadata.annotations["{stages.OUTCOME_ANNOTATION}"]',
            "operator": "In",
            "values": [outcome],
        } in expressions
    assert "phase: Succeeded" in ends["pod-succeed"]["spec"]["next"]["statusTemplate"]
    assert "phase: Failed" in ends["pod-fail"]["spec"]["next"]["statusTemplate"]


def test_probe_readiness_leaves_probed_pods_not_ready() -> None:
    def pod_ready(probe: bool) -> str:
        rendered = stages.render(fallback_cidr="127.200.255.0/24", probe_readiness=probe)
        docs = yaml.safe_load_all(rendered)
        stage = next(d for d in docs if d.get("metadata", {}).get("name") == "pod-ready")
        template: str = stage["spec"]["next"]["statusTemplate"]
        return template

    assert "readinessProbe" not in pod_ready(False)
    assert '{{ if .readinessProbe }}{{ $ready = "False" }}' in pod_ready(True)


def test_pods_fated_to_fail_are_left_to_the_chaos_stages() -> None:
    """Exactly one stage plays a pod: `pod-ready` leaves those fated by their image."""
    stage = {d["metadata"]["name"]: d for d in _docs() if d["kind"] == "Stage"}
    fated = {"key": chaos.FATED, "operator": "NotIn", "values": ["true"]}
    assert fated in stage["pod-ready"]["spec"]["selector"]["matchExpressions"]
    for name, reason in (("pod-image-pull-failed", "ImagePullBackOff"),
                         ("pod-crash-loop", "CrashLoopBackOff")):  # fmt: skip
        expressions = stage[name]["spec"]["selector"]["matchExpressions"]
        # Played once: a pod already in that state does not match again.
        assert {"key": ".status.containerStatuses.[].state.waiting.reason",
                "operator": "NotIn", "values": [reason]} in expressions  # fmt: skip
        assert f"reason: {reason}" in stage[name]["spec"]["next"]["statusTemplate"]
    crash = stage["pod-crash-loop"]["spec"]["selector"]["matchExpressions"]
    assert any(chaos.FATE_ANNOTATION in e["key"] for e in crash)
