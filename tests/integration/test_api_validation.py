"""Bad ModelDeployments are refused by the real API server, naming the field.

Each row is one mistake a user could commit to Git; the API server (schema + CEL
rules generated from the pydantic models) must refuse it before the operator sees it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop.devcluster import testing

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"

VALID: dict[str, Any] = {
    "apiVersion": "pitstop.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "fraud"},
    "spec": {
        "model": {"name": "fraud", "version": "7"},
        "image": "registry.example.com/ml/fraud:7",
    },
}


def without(path: str) -> Any:
    return ("del", path)


def variant(**changes: Any) -> dict[str, Any]:
    """VALID with `spec` keys replaced (a value of ("del", key) removes the key)."""
    obj = copy.deepcopy(VALID)
    for key, value in changes.items():
        if key == "metadata":
            obj["metadata"] = value
        elif isinstance(value, tuple) and value[0] == "del":
            del obj["spec"][value[1]]
        else:
            obj["spec"][key] = value
    return obj


CANARY = {"type": "Canary"}
INVALID = [
    ("no model", variant(model=without("model")), ["spec.model", "Required"]),
    ("model without version", variant(model={"name": "fraud"}), ["spec.model.version", "Required"]),
    (
        "two sources",
        variant(model={"name": "f", "version": "1",
                       "source": {"uri": "s3://b/m", "pvc": {"claimName": "models"}}}),
        ["spec.model.source", "exactly one of spec.model.source.uri or spec.model.source.pvc"],
    ),
    (
        "no image and no source",
        variant(image=without("image")),
        ["spec", "spec.model.source is required unless spec.image is set"],
    ),
    (
        "source without build settings",
        {**variant(image=without("image")),
         "spec": {"model": {"name": "f", "version": "1", "source": {"uri": "s3://b/m"}}}},
        ["spec", "spec.build is required unless spec.image is set"],
    ),
    ("source uri scheme", variant(model={"name": "f", "version": "1", "source": {"uri": "ftp://x"}}),
     ["spec.model.source.uri"]),
    ("negative replicas", variant(serving={"replicas": -1}),
     ["spec.serving.replicas", "should be greater than or equal to 0"]),
    ("batching wait of 2s", variant(serving={"batching": {"maxWait": "2s"}}),
     ["spec.serving.batching", "maxWait must be more than 0s and at most 1s"]),
    ("drain of 11m", variant(serving={"drain": "11m"}),
     ["spec.serving", "drain must be at most 10m"]),
    ("batching of 0 rows", variant(serving={"batching": {"maxRows": 0}}),
     ["spec.serving.batching.maxRows", "greater than or equal to 1"]),
    ("canary weight above 100", variant(strategy={**CANARY, "canary": {"steps": [{"weight": 150}]}}),
     ["spec.strategy.canary.steps[0].weight", "less than or equal to 100"]),
    ("canary weight below 0", variant(strategy={**CANARY, "canary": {"steps": [{"weight": -5}]}}),
     ["spec.strategy.canary.steps[0].weight", "greater than or equal to 0"]),
    (
        "canary weights not ascending",
        variant(strategy={**CANARY, "canary": {"steps": [{"weight": 50}, {"weight": 10}]}}),
        ["spec.strategy.canary.steps", "weights must be strictly ascending"],
    ),
    (
        "canary weights repeated",
        variant(strategy={**CANARY, "canary": {"steps": [{"weight": 20}, {"weight": 20}]}}),
        ["spec.strategy.canary.steps", "weights must be strictly ascending"],
    ),
    ("unknown strategy", variant(strategy={"type": "Rainbow"}),
     ["spec.strategy.type", "Unsupported value", "Rainbow"]),
    (
        "canary settings on a blue/green strategy",
        variant(strategy={"type": "BlueGreen", "canary": {"steps": [{"weight": 10}]}}),
        ["spec.strategy", "spec.strategy.canary is only allowed when spec.strategy.type is Canary"],
    ),
    (
        "shadow settings on a canary strategy",
        variant(strategy={"type": "Canary", "shadow": {"percent": 50}}),
        ["spec.strategy", "spec.strategy.shadow is only allowed when spec.strategy.type is Shadow"],
    ),
    ("malformed pause", variant(strategy={**CANARY, "canary": {"steps": [{"weight": 10, "pause": "30 seconds"}]}}),
     ["spec.strategy.canary.steps[0].pause", "should match"]),
    ("malformed interval", variant(analysis={"interval": "soon"}), ["spec.analysis.interval", "should match"]),
    ("malformed progress deadline", variant(progressDeadline="10 minutes"),
     ["spec.progressDeadline", "should match"]),
    ("progress deadline of zero", variant(progressDeadline="0s"),
     ["spec", "spec.progressDeadline must be at least 1s"]),
    ("image with spaces", variant(image="registry.example.com/ml/fraud 7"), ["spec.image", "should match"]),
    ("unknown field", variant(replicas=3), ['unknown field "spec.replicas"']),
    ("unknown nested field", variant(serving={"replica": 3}), ['unknown field "spec.serving.replica"']),
    ("shadow percent zero", variant(strategy={"type": "Shadow", "shadow": {"percent": 0}}),
     ["spec.strategy.shadow.percent", "greater than or equal to 1"]),
    (
        "metric with two providers",
        variant(analysis={"metrics": [{"name": "e", "builtin": "errorRate",
                                       "prometheus": {"query": "up"}, "max": 1}]}),
        ["spec.analysis.metrics[0]", "exactly one of builtin, prometheus or webhook"],
    ),
    ("metric without a limit", variant(analysis={"metrics": [{"name": "e", "builtin": "errorRate"}]}),
     ["spec.analysis.metrics[0]", "a metric needs a limit"]),
    (
        "duplicate metric names",
        variant(analysis={"metrics": [{"name": "e", "builtin": "errorRate", "max": 1},
                                      {"name": "e", "builtin": "drift", "max": 1}]}),
        ["spec.analysis.metrics[1]", "Duplicate value"],
    ),
    ("route for the wrong provider", variant(traffic={"provider": "service", "httpRoute": {"name": "r"}}),
     ["spec.traffic", "httpRoute is only allowed with provider gateway-api"]),
    ("version not label-safe", variant(model={"name": "fraud", "version": "v7 final"}),
     ["spec.model.version", "should match"]),
    ("name too long for child objects", variant(metadata={"name": "f" * 60}),
     ["metadata.name must be at most 52 characters"]),
    # The sequential judge's settings (issue 11).
    ("minPause longer than pause",
     variant(strategy={**CANARY, "canary": {"steps": [{"weight": 10, "pause": "30s", "minPause": "1m"}]}}),
     ["spec.strategy.canary.steps[0]", "minPause must not be longer than pause"]),
    ("minPause without pause",
     variant(strategy={**CANARY, "canary": {"steps": [{"weight": 10, "minPause": "1m"}]}}),
     ["spec.strategy.canary.steps[0]", "minPause needs pause"]),
    ("shadow minDuration longer than duration",
     variant(strategy={"type": "Shadow", "shadow": {"duration": "1m", "minDuration": "2m"}}),
     ["spec.strategy.shadow", "minDuration must not be longer than duration"]),
    ("confidence of 1", variant(analysis={"confidence": 1.0}),
     ["spec.analysis", "confidence must be in (0.5, 1)"]),
    ("unknown onInconclusive", variant(analysis={"onInconclusive": "Wait"}),
     ["spec.analysis.onInconclusive", "Unsupported value"]),
    ("two relative limits on one metric",
     variant(analysis={"metrics": [{"name": "e", "builtin": "errorRate", "maxAboveStable": 0.01,
                                    "maxRatioToStable": 2}]}),
     ["spec.analysis.metrics[0]", "set one of maxAboveStable or maxRatioToStable"]),
    ("drift against the stable",
     variant(analysis={"metrics": [{"name": "d", "builtin": "drift", "maxAboveStable": 0.1}]}),
     ["spec.analysis.metrics[0]", "builtin drift takes max only"]),
    ("agreement with a max",
     variant(analysis={"metrics": [{"name": "a", "builtin": "agreement", "max": 0.9}]}),
     ["spec.analysis.metrics[0]", "builtin agreement takes min only"]),
    ("quality with a min",
     variant(analysis={"metrics": [{"name": "q", "builtin": "quality", "min": 0.9}]}),
     ["spec.analysis.metrics[0]", "builtin quality is an error"]),
    ("feedback retaining nothing",
     variant(serving={"feedback": {"retain": 0}}),
     ["spec.serving.feedback.retain"]),
    ("PromQL with a query and counts",
     variant(analysis={"metrics": [{"name": "q", "max": 1, "prometheus": {
         "query": "x", "numerator": "a", "denominator": "b"}}]}),
     ["spec.analysis.metrics[0].prometheus", "set either query, or numerator and denominator"]),
    ("PromQL with a numerator only",
     variant(analysis={"metrics": [{"name": "q", "max": 1, "prometheus": {"numerator": "a"}}]}),
     ["spec.analysis.metrics[0].prometheus", "set either query, or numerator and denominator"]),
    ("generated load of zero", variant(analysis={"load": {"requestsPerSecond": 0}}),
     ["spec.analysis.load.requestsPerSecond", "greater than 0"]),
]  # fmt: skip


def apply(cluster: testing.DevCluster, namespace: str, obj: dict[str, Any]) -> tuple[int, str]:
    done = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        input=yaml.safe_dump(obj), check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


@pytest.mark.integration
@pytest.mark.parametrize(("obj", "expected"), [pytest.param(o, e, id=i) for i, o, e in INVALID])
def test_refused_with_the_field_named(
    cluster: testing.DevCluster, crd: str, namespace: str, obj: dict[str, Any], expected: list[str]
) -> None:
    code, error = apply(cluster, namespace, obj)
    assert code != 0, "the API server accepted an invalid ModelDeployment"
    for fragment in expected:
        assert fragment in error, f"{fragment!r} not in: {error}"


@pytest.mark.integration
@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_samples_are_accepted_and_defaulted(
    cluster: testing.DevCluster, crd: str, namespace: str, sample: Path
) -> None:
    obj = yaml.safe_load(sample.read_text())
    done = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(sample), "-o", "yaml"
    )
    applied = yaml.safe_load(done.stdout)
    assert applied["spec"]["model"] == {**obj["spec"]["model"]}
    # Omitted sections are defaulted by the API server from the schema.
    assert applied["spec"]["traffic"]["provider"] == "service"
    assert applied["spec"]["analysis"]["interval"] == obj["spec"].get("analysis", {}).get(
        "interval", "15s"
    )
    assert applied["spec"]["serving"]["maxBatchSize"] == 100


@pytest.mark.integration
def test_kubectl_explain_documents_the_fields(cluster: testing.DevCluster, crd: str) -> None:
    # The API server publishes a new CRD's OpenAPI a few seconds after it is established.
    explained = cluster.wait(
        "the CRD's OpenAPI",
        lambda: (
            cluster.kubectl(
                "explain", "modeldeployment.spec.strategy.canary.steps", check=False
            ).stdout
        ),
    )
    text = " ".join(explained.split())  # kubectl wraps long descriptions
    assert "Percent of traffic for the candidate" in text
    assert "Absent: wait for a manual promote" in text
