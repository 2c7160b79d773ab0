"""Render the per-revision Deployment and the Services of a ModelDeployment.

The revision is a hash of the rendered pod template, so it changes exactly when the
pods would change (image, model version, resources, auth, limits) and not when only
the replica count does. A stable revision's Deployment is rendered once, at creation;
afterwards the operator only scales it, which is why rollback never touches its pods.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from pitstop.api import durations
from pitstop.api.resource import API_VERSION, KIND, ModelDeployment
from pitstop.api.spec import FeedbackSpec, ModelDeploymentSpec
from pitstop.rendering import labels

Object = dict[str, Any]

# The serving template's contract (model_images/README.md): the image itself names its
# model (PITSTOP_MODEL is set by the bento); the operator passes limits and mounts.
API_KEYS_DIR = "/etc/pitstop/api-keys"
MIRROR_DIR = "/etc/pitstop/mirror"
MIRROR_FILE = "mirror.json"

# Model servers run as the user of the images BentoML generates (`bentoml`, uid and gid
# 1034, who owns the bento and its virtualenv there), given by number so the kubelet
# can check runAsNonRoot: the images say `USER bentoml`, a name it cannot check.
MODEL_UID = 1034
# The root filesystem is read-only; what `bentoml serve` writes goes to emptyDirs:
# BENTOML_HOME (it creates its stores and the Prometheus multiprocess folder there; the
# image's own, /home/bentoml/, holds the bento and stays read-only: a bento served from
# its folder reads its models from it) and the temporary folder (its workers' sockets).
BENTOML_HOME = "/var/lib/bentoml"
TMP_DIR = "/tmp"
WRITABLE = {"bentoml-home": BENTOML_HOME, "tmp": TMP_DIR}  # emptyDir volume -> mount path
# What a model server has to stop in once its drain (spec.serving.drain) is over: the
# pod's grace period is the drain plus this (Kubernetes' default grace period).
SHUTDOWN_SECONDS = 30


def _container(md: ModelDeployment, image: str) -> Object:
    spec = md.spec
    env: list[Object] = [
        {"name": "PITSTOP_MAX_BATCH", "value": str(spec.serving.max_batch_size)},
        {"name": "BENTOML_HOME", "value": BENTOML_HOME},
        {"name": "TMPDIR", "value": TMP_DIR},
    ]
    # Every revision mounts the (optional) mirror ConfigMap: a stable revision's pods
    # can then start mirroring to a shadow candidate without being replaced.
    mounts: list[Object] = [{"name": "mirror", "mountPath": MIRROR_DIR, "readOnly": True}]
    mounts += [{"name": name, "mountPath": path} for name, path in WRITABLE.items()]
    if spec.serving.auth is not None:
        env.append({"name": "PITSTOP_API_KEYS_DIR", "value": API_KEYS_DIR})
        mounts.append({"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True})
    if spec.serving.batching is not None:
        wait_ms = durations.parse(spec.serving.batching.max_wait).total_seconds() * 1000
        env.append({"name": "PITSTOP_BATCH_WAIT_MS", "value": f"{wait_ms:g}"})
        env.append({"name": "PITSTOP_BATCH_MAX_ROWS", "value": str(spec.serving.batching.max_rows)})
    feedback = feedback_of(spec)
    if feedback is not None:
        env.append({"name": "PITSTOP_FEEDBACK_RETAIN", "value": str(feedback.retain)})
        env.append({"name": "PITSTOP_FEEDBACK_PEERS", "value": peers_address(md)})
    if spec.serving.rate_limit is not None:
        env.append(
            {
                "name": "PITSTOP_RATE_LIMIT_RPS",
                "value": str(spec.serving.rate_limit.requests_per_second),
            }
        )
        env.append(
            {"name": "PITSTOP_RATE_LIMIT_BURST", "value": str(spec.serving.rate_limit.burst)}
        )
    container: Object = {
        "name": "model",
        "image": image,
        "ports": [{"name": "http", "containerPort": labels.SERVING_PORT, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        # The restricted Pod Security Standard, and a read-only root filesystem.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    resources = spec.serving.resources
    if resources is not None:
        container["resources"] = resources.model_dump(by_alias=True, exclude_none=True)
    drain = drain_seconds(md)
    if drain > 0:
        # A pod leaves its endpoints when it starts terminating, but kube-proxy and the
        # load balancers act on that a moment later and send it requests until then.
        # Serving on through that moment (the kubelet's own sleep: no binary needed in
        # the image) keeps a promotion or a scale-down from failing requests.
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain}}}
    return container


def drain_seconds(md: ModelDeployment) -> int:
    return math.ceil(durations.parse(md.spec.serving.drain).total_seconds())


def pod_template(md: ModelDeployment, image: str) -> Object:
    """The pod template of the revision `md.spec` describes, without its revision label."""
    spec = md.spec
    volumes: list[Object] = [
        {
            "name": "mirror",
            "configMap": {"name": labels.mirror_name(md.metadata.name), "optional": True},
        }
    ]
    volumes += [{"name": name, "emptyDir": {}} for name in WRITABLE]
    if spec.serving.auth is not None:
        volumes.append(
            {"name": "api-keys", "secret": {"secretName": spec.serving.auth.api_keys_secret}}
        )
    pod_spec: Object = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": MODEL_UID,
            "runAsGroup": MODEL_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(md, image)],
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": drain_seconds(md) + SHUTDOWN_SECONDS,
    }
    if spec.build is not None and spec.build.push_secret is not None:
        pod_spec["imagePullSecrets"] = [{"name": spec.build.push_secret}]
    return {
        "metadata": {
            "labels": {
                **labels.base(md.metadata.name),
                labels.MODEL: spec.model.name,
                labels.MODEL_VERSION: spec.model.version,
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(labels.SERVING_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod_spec,
    }


def revision_of(template: Object) -> str:
    """A stable 10-hex-digit hash of a pod template (canonical JSON, sorted keys)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def owner_reference(md: ModelDeployment) -> Object:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": md.metadata.name,
        "uid": md.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(md: ModelDeployment, name: str, object_labels: dict[str, str]) -> Object:
    return {
        "name": name,
        "namespace": md.metadata.namespace,
        "labels": object_labels,
        "ownerReferences": [owner_reference(md)],
    }


def deployment(md: ModelDeployment, image: str, revision: str, replicas: int) -> Object:
    """The Deployment that runs one revision's model servers."""
    name = md.metadata.name
    template = pod_template(md, image)
    template["metadata"]["labels"][labels.REVISION] = revision
    if feedback_of(md.spec) is not None:
        # Outside the hashed template, as the label: it names the hash. The template
        # answers with it (x-pitstop-revision), so feedback clients know who predicted.
        template["spec"]["containers"][0]["env"].append(
            {"name": "PITSTOP_REVISION", "value": revision}
        )
    revision_labels = labels.for_revision(name, revision, md.spec.model.name, md.spec.model.version)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(md, labels.revision_name(name, revision), revision_labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels.pod_selector(name, revision)},
            "template": template,
        },
    }


def _service(
    md: ModelDeployment, name: str, object_labels: dict[str, str], revision: str | None
) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(md, name, object_labels),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.pod_selector(md.metadata.name, revision),
            "ports": [
                {
                    "name": "http",
                    "port": labels.SERVICE_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def feedback_of(spec: ModelDeploymentSpec) -> FeedbackSpec | None:
    """Feedback settings: asked for, or implied by a `quality` metric (which judges it)."""
    if spec.serving.feedback is not None:
        return spec.serving.feedback
    if any(m.builtin == "quality" for m in spec.analysis.metrics):
        return FeedbackSpec()
    return None


def peers_address(md: ModelDeployment) -> str:
    """Where each model server finds the others: the peers Service's DNS name, which
    resolves to every ready pod of every revision (headless)."""
    name, namespace = labels.peers_name(md.metadata.name), md.metadata.namespace
    return f"{name}.{namespace}.svc:{labels.SERVING_PORT}"


def peers_service(md: ModelDeployment) -> Object:
    """A headless Service over every revision's ready pods: the model servers forward
    feedback for a prediction they did not make to the others (DNS gives each pod)."""
    name = md.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(md, labels.peers_name(name), {**labels.base(name),
                                                           labels.ROLE: "peers"}),
        "spec": {
            "clusterIP": "None",
            "selector": labels.pod_selector(name, None),
            "ports": [{"name": "http", "port": labels.SERVING_PORT, "targetPort": "http",
                       "protocol": "TCP"}],
        },
    }  # fmt: skip


def revision_service(md: ModelDeployment, revision: str) -> Object:
    """A Service in front of one revision only (preview, smoke tests, mirroring target)."""
    name = md.metadata.name
    object_labels = {**labels.base(name), labels.REVISION: revision, labels.ROLE: "revision"}
    return _service(md, labels.revision_name(name, revision), object_labels, revision)


def entry_service(md: ModelDeployment, revision: str | None) -> Object:
    """The Service applications call. It selects the revision that serves users, or,
    with `revision=None`, the pods of every running revision (a canary by pod ratio)."""
    name = md.metadata.name
    object_labels = {**labels.base(name), labels.ROLE: "entry"}
    return _service(md, labels.entry_name(name), object_labels, revision)


def mirror_config_map(md: ModelDeployment, target: str | None, percent: int) -> Object:
    """The serving template's mirror file: `percent`% of requests copied to `target`."""
    body: dict[str, object] = {"percent": percent if target else 0}
    if target is not None:
        body["url"] = f"http://{target}.{md.metadata.namespace}.svc:{labels.SERVICE_PORT}/predict"
    name = md.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            md, labels.mirror_name(name), {**labels.base(name), labels.ROLE: "mirror"}
        ),
        "data": {MIRROR_FILE: json.dumps(body, sort_keys=True)},
    }
