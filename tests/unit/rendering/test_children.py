"""Rendering of revision Deployments and Services from a ModelDeployment."""

from __future__ import annotations

from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.rendering import children, labels


def md(**spec_changes: Any) -> ModelDeployment:
    spec: dict[str, Any] = {
        "model": {"name": "fraud", "version": "7"},
        "image": "registry.example.com/ml/fraud:7",
        "serving": {"replicas": 2},
    }
    spec.update(spec_changes)
    return ModelDeployment.model_validate(
        {"metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1"}, "spec": spec}
    )


def revision(model: ModelDeployment) -> str:
    return children.revision_of(children.pod_template(model, model.spec.image or ""))


def test_revision_ignores_replicas_but_not_what_defines_the_pods() -> None:
    base = revision(md())
    assert revision(md(serving={"replicas": 5})) == base
    assert revision(md(image="registry.example.com/ml/fraud:8")) != base
    assert revision(md(model={"name": "fraud", "version": "8"})) != base
    assert revision(md(serving={"replicas": 2, "resources": {"limits": {"cpu": "1"}}})) != base
    assert len(base) == 10
    assert int(base, 16) >= 0


def test_deployment_is_owned_labelled_and_hardened() -> None:
    obj = children.deployment(md(), "img:1", "abc1234567", 3)
    meta = obj["metadata"]
    assert meta["name"] == "fraud-abc1234567"
    assert meta["ownerReferences"][0] == {
        "apiVersion": "pitstop.dev/v1alpha1", "kind": "ModelDeployment", "name": "fraud",
        "uid": "u-1", "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    assert meta["labels"][labels.REVISION] == "abc1234567"
    assert meta["labels"][labels.MODEL_VERSION] == "7"
    assert obj["spec"]["replicas"] == 3
    selector = obj["spec"]["selector"]["matchLabels"]
    pod_labels = obj["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "img:1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize(
    ("drain", "sleep", "grace"),
    [(None, 5, 35), ("20s", 20, 50), ("1500ms", 2, 32), ("0s", None, 30)],
)
def test_a_terminating_model_pod_serves_on_until_the_data_plane_has_moved(
    drain: str | None, sleep: int | None, grace: int
) -> None:
    """Endpoints change before kube-proxy and gateways act on it: a pod that stopped at
    once would fail the requests still routed to it (seen end to end on a promotion).
    The grace period leaves the server its usual time to stop after the drain."""
    serving = {"drain": drain} if drain is not None else {}
    pod = children.deployment(md(serving=serving), "img:1", "r", 1)["spec"]["template"]["spec"]
    hook = pod["containers"][0].get("lifecycle", {}).get("preStop", {})
    assert hook.get("sleep", {}).get("seconds") == sleep
    assert pod["terminationGracePeriodSeconds"] == grace


def test_model_pods_meet_the_restricted_pod_security_standard() -> None:
    """What the `restricted` level checks (the integration tests' namespaces enforce it)."""
    pod = children.deployment(md(serving={"replicas": 1, "auth": {"apiKeysSecret": "k"}}),
                              "img:1", "r", 1)["spec"]["template"]["spec"]  # fmt: skip
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == context["runAsGroup"] == children.MODEL_UID
    assert context["runAsUser"] > 0  # a number the kubelet can check, not root
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {next(k for k in v if k != "name") for v in pod["volumes"]} == {
        "configMap", "secret", "emptyDir",
    }  # fmt: skip


def test_what_the_server_writes_goes_to_its_own_empty_dirs() -> None:
    """The root filesystem is read-only: BentoML's home and the temporary folder are
    emptyDirs, one each, and the environment points the server at them."""
    pod = children.deployment(md(), "img:1", "r", 1)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"]: m["name"] for m in container["volumeMounts"] if m["name"] in empty}
    assert writable == {"/var/lib/bentoml": "bentoml-home", "/tmp": "tmp"}
    assert env["BENTOML_HOME"] == "/var/lib/bentoml"
    assert env["TMPDIR"] == "/tmp"
    assert all(not m.get("readOnly") for m in container["volumeMounts"] if m["name"] in empty)


def test_auth_and_rate_limit_reach_the_model_server() -> None:
    obj = children.deployment(
        md(serving={"auth": {"apiKeysSecret": "keys"},
                    "rateLimit": {"requestsPerSecond": 50, "burst": 100}}),
        "img:1", "r", 1,
    )  # fmt: skip
    pod = obj["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["PITSTOP_API_KEYS_DIR"] == children.API_KEYS_DIR
    assert env["PITSTOP_RATE_LIMIT_RPS"] == "50.0"
    assert env["PITSTOP_RATE_LIMIT_BURST"] == "100"
    assert {"name": "api-keys", "secret": {"secretName": "keys"}} in pod["volumes"]


def test_batching_reaches_the_model_server_only_when_asked_for() -> None:
    def env(model: ModelDeployment) -> dict[str, str]:
        pod = children.deployment(model, "img:1", "r", 1)["spec"]["template"]["spec"]
        return {e["name"]: e["value"] for e in pod["containers"][0]["env"]}

    asked = env(md(serving={"batching": {"maxWait": "20ms", "maxRows": 32}}))
    assert asked["PITSTOP_BATCH_WAIT_MS"] == "20"
    assert asked["PITSTOP_BATCH_MAX_ROWS"] == "32"
    assert env(md(serving={"batching": {}}))["PITSTOP_BATCH_WAIT_MS"] == "5"  # the default
    assert "PITSTOP_BATCH_WAIT_MS" not in env(md())  # off: one model call per request


def test_without_auth_the_model_server_is_not_given_a_keys_directory() -> None:
    # Naming PITSTOP_API_KEYS_DIR makes the serving template require keys (it refuses
    # predictions while none is readable), so it must come only with spec.serving.auth.
    pod = children.deployment(md(), "img:1", "r", 1)["spec"]["template"]["spec"]
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert "PITSTOP_API_KEYS_DIR" not in env
    assert all(volume["name"] != "api-keys" for volume in pod["volumes"])


def test_entry_service_selects_exactly_one_revision() -> None:
    entry = children.entry_service(md(), "r1")
    assert entry["metadata"]["name"] == "fraud"
    assert entry["spec"]["selector"] == {labels.DEPLOYMENT: "fraud", labels.REVISION: "r1"}
    per_revision = children.revision_service(md(), "r1")
    assert per_revision["metadata"]["name"] == "fraud-r1"
    assert per_revision["spec"]["selector"] == entry["spec"]["selector"]


def test_every_revision_mounts_the_optional_mirror_config() -> None:
    pod = children.deployment(md(), "img:1", "r", 1)["spec"]["template"]["spec"]
    assert {"name": "mirror", "configMap": {"name": "fraud-mirror", "optional": True}} in pod[
        "volumes"
    ]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "mirror", "mountPath": children.MIRROR_DIR, "readOnly": True} in mounts


def test_mirror_config_names_the_candidate_service() -> None:
    config = children.mirror_config_map(md(), "fraud-abc", 25)
    assert config["metadata"]["name"] == "fraud-mirror"
    assert config["data"] == {
        "mirror.json": '{"percent": 25, "url": "http://fraud-abc.ml.svc:80/predict"}'
    }
    assert children.mirror_config_map(md(), None, 25)["data"] == {"mirror.json": '{"percent": 0}'}


def test_entry_service_selects_all_revisions_for_a_replica_canary() -> None:
    entry = children.entry_service(md(), None)
    assert entry["spec"]["selector"] == {labels.DEPLOYMENT: "fraud"}


def _env(obj: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}


QUALITY = {"metrics": [{"name": "quality", "builtin": "quality", "maxAboveStable": 0.02}]}


def test_feedback_reaches_the_model_server_only_when_asked_for_or_judged() -> None:
    plain = _env(children.deployment(md(), "img:1", "abc1234567", 1))
    assert not {"PITSTOP_FEEDBACK_PEERS", "PITSTOP_FEEDBACK_RETAIN", "PITSTOP_REVISION"} & set(
        plain
    )
    # Off, the pods of existing ModelDeployments stay exactly as they were.
    assert revision(md()) == revision(md(analysis={"metrics": []}))

    judged = md(analysis=QUALITY)
    env = _env(children.deployment(judged, "img:1", "abc1234567", 1))
    assert env["PITSTOP_REVISION"] == "abc1234567"
    assert env["PITSTOP_FEEDBACK_PEERS"] == "fraud-peers.ml.svc:3000"
    assert env["PITSTOP_FEEDBACK_RETAIN"] == "100000"
    # The revision is named outside the hashed template (the hash names the revision).
    template = children.pod_template(judged, "img:1")
    assert "PITSTOP_REVISION" not in {e["name"] for e in template["spec"]["containers"][0]["env"]}

    asked = md(serving={"replicas": 1, "feedback": {"retain": 5000}})
    assert _env(children.deployment(asked, "img:1", "r", 1))["PITSTOP_FEEDBACK_RETAIN"] == "5000"


def test_the_peers_service_is_headless_over_every_revision() -> None:
    service = children.peers_service(md(analysis=QUALITY))
    assert service["metadata"]["name"] == "fraud-peers"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {labels.DEPLOYMENT: "fraud"}
    assert service["spec"]["ports"][0]["port"] == labels.SERVING_PORT
    assert service["metadata"]["ownerReferences"][0]["uid"] == "u-1"
