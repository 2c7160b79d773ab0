"""The build Job: rootless and unprivileged, bounded, named by its build key, in the build
namespace with copies of the requester's Secrets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import BuildCache
from pitstop.rendering import build_job, build_objects

SETTINGS = build_job.BuildSettings(operator_image="pitstop/operator:0.1.0")


def md(name: str = "fraud", **build: Any) -> ModelDeployment:
    spec: dict[str, Any] = {
        "model": {"name": "fraud", "version": "7", "source": {"uri": "https://h/fraud.bentomodel"}},
        "build": {"registry": "registry.example.com/ml", "pushSecret": "regcred", **build},
    }
    return ModelDeployment.model_validate(
        {"metadata": {"name": name, "namespace": "ml", "uid": "u-1"}, "spec": spec}
    )


def containers(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = job["spec"]["template"]["spec"]
    [prepare] = pod["initContainers"]
    [build] = pod["containers"]
    return prepare, build


def test_key_depends_on_what_defines_the_package_not_on_who_asks() -> None:
    key = build_job.build_key(md(), SETTINGS)
    assert len(key) == 16
    assert build_job.build_key(md(name="fraud-eu"), SETTINGS) == key
    assert build_job.build_key(md(builder="kaniko"), SETTINGS) == key
    assert build_job.build_key(md(registry="other.example.com/ml"), SETTINGS) != key
    newer = build_job.BuildSettings(operator_image="pitstop/operator:0.2.0")
    assert build_job.build_key(md(), newer) != key  # a new serving template
    other = md().model_copy(deep=True)
    spec = other.spec.model_copy(
        update={"model": other.spec.model.model_copy(update={"version": "8"})}
    )
    assert build_job.build_key(other.model_copy(update={"spec": spec}), SETTINGS) != key


def test_image_is_tagged_with_version_and_key() -> None:
    key = build_job.build_key(md(), SETTINGS)
    assert build_job.image_ref(md(), key) == f"registry.example.com/ml/fraud:7-{key}"


def test_buildkit_job_is_rootless_unprivileged_bounded_and_in_the_build_namespace() -> None:
    job = build_job.job(md(timeout="10m"), "k" * 16, 2, SETTINGS)
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == f"pitstop-build-{'k' * 16}-2"
    assert meta["namespace"] == "pitstop-builds"  # not the ModelDeployment's (ml)
    assert meta["labels"][build_job.BUILD_KEY] == "k" * 16
    assert meta["labels"][build_job.BUILD_ATTEMPT] == "2"
    # No owner across namespaces, no requester's name in labels: any requester shares it.
    assert "ownerReferences" not in meta
    assert "pitstop.dev/model-deployment" not in meta["labels"]
    assert meta["annotations"][build_job.REQUESTED_BY] == "ml/fraud"
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 600)
    assert spec["ttlSecondsAfterFinished"] == SETTINGS.ttl_seconds
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    prepare, build = containers(job)

    assert build["image"].endswith("-rootless")
    security = build["securityContext"]
    assert security["privileged"] is False
    assert (security["runAsUser"], security["runAsNonRoot"]) == (1000, True)
    assert security["seccompProfile"] == {"type": "Unconfined"}
    assert security["appArmorProfile"] == {"type": "Unconfined"}
    assert "capabilities" not in security  # nothing added
    env = {e["name"]: e["value"] for e in build["env"]}
    assert env["BUILDKITD_FLAGS"] == "--oci-worker-no-process-sandbox"
    script = build["command"][-1]
    assert script.startswith("buildctl-daemonless.sh build --frontend dockerfile.v0")
    image = f"registry.example.com/ml/fraud:7-{'k' * 16}"
    assert f"type=image,name={image},push=true" in script
    assert "--local context=/workspace/context" in script
    assert build["resources"]["limits"]["memory"]
    assert build["terminationMessagePolicy"] == "FallbackToLogsOnError"
    mounts = {m["name"]: m["mountPath"] for m in build["volumeMounts"]}
    assert mounts["docker-config"] == "/home/user/.docker"

    assert prepare["image"] == "pitstop/operator:0.1.0"
    assert prepare["command"] == ["pitstop", "package", "prepare-build"]
    assert "--source=https://h/fraud.bentomodel" in prepare["args"]
    assert f"--image={image}" in prepare["args"]
    assert prepare["securityContext"]["allowPrivilegeEscalation"] is False
    assert prepare["securityContext"]["readOnlyRootFilesystem"] is True
    # The push Secret is the attempt's copy of the requester's, made before it resumes.
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    copy = f"pitstop-build-{'k' * 16}-2-push"
    assert volumes["docker-config"]["secret"]["secretName"] == copy
    assert json.loads(meta["annotations"][build_job.SECRET_SOURCES]) == {copy: "ml/regcred"}
    assert spec["suspend"] is True


def test_a_job_without_secrets_starts_at_once() -> None:
    job = build_job.job(md(pushSecret=None), "k" * 16, 1, SETTINGS)
    assert job["spec"]["suspend"] is False
    assert build_job.SECRET_SOURCES not in job["metadata"]["annotations"]
    elsewhere = build_job.BuildSettings(operator_image="o:1", namespace="ml-builds")
    assert build_job.job(md(), "k" * 16, 1, elsewhere)["metadata"]["namespace"] == "ml-builds"


def test_kaniko_job_is_unprivileged_and_pushes_to_the_destination() -> None:
    job = build_job.job(md(builder="kaniko"), "k" * 16, 1, SETTINGS)
    _, build = containers(job)
    assert build["image"].startswith("gcr.io/kaniko-project/executor:")
    assert build["securityContext"]["privileged"] is False
    assert build["securityContext"]["allowPrivilegeEscalation"] is False
    assert f"--destination=registry.example.com/ml/fraud:7-{'k' * 16}" in build["args"]
    assert "--context=dir:///workspace/context" in build["args"]
    assert "--digest-file=/dev/termination-log" in build["args"]
    assert "buildkitd" not in {v["name"] for v in job["spec"]["template"]["spec"]["volumes"]}


def test_cache_from_the_spec_or_the_operator_default() -> None:
    cache = {"repository": "registry.example.com/ml/cache"}
    _, build = containers(build_job.job(md(cache=cache), "k" * 16, 1, SETTINGS))
    script = build["command"][-1]
    assert "--import-cache type=registry,ref=registry.example.com/ml/cache" in script
    assert "--export-cache type=registry,ref=registry.example.com/ml/cache,mode=max" in script

    read_only = {**cache, "export": False}
    _, build = containers(build_job.job(md(cache=read_only), "k" * 16, 1, SETTINGS))
    assert "--export-cache" not in build["command"][-1]

    _, build = containers(build_job.job(md(builder="kaniko", cache=cache), "k" * 16, 1, SETTINGS))
    assert "--cache-repo=registry.example.com/ml/cache" in build["args"]

    settings = build_job.BuildSettings(
        operator_image="pitstop/operator:0.1.0",
        default_cache=BuildCache(repository="cache.example.com/c", mode="min"),
    )
    _, build = containers(build_job.job(md(), "k" * 16, 1, settings))
    assert "ref=cache.example.com/c,mode=min" in build["command"][-1]
    _, build = containers(build_job.job(md(), "k" * 16, 1, SETTINGS))
    assert "cache" not in build["command"][-1]


def test_pvc_source_is_mounted_read_only_and_credentials_come_from_the_secret() -> None:
    spec: dict[str, Any] = {
        "model": {
            "name": "fraud",
            "version": "7",
            "source": {"pvc": {"claimName": "models", "path": "fraud/7/"},
                       "credentialsSecret": "creds"},
        },
        "build": {"registry": "registry.example.com/ml"},
    }  # fmt: skip
    model = ModelDeployment.model_validate(
        {"metadata": {"name": "fraud", "namespace": "ml", "uid": "u"}, "spec": spec}
    )
    assert build_job.source_of(model) == "pvc://models/fraud/7/"
    job = build_job.job(model, "k" * 16, 1, SETTINGS)
    prepare, _ = containers(job)
    assert "--source=/source/fraud/7/" in prepare["args"]
    assert {"name": "source", "mountPath": "/source", "readOnly": True} in prepare["volumeMounts"]
    assert prepare["envFrom"] == [{"secretRef": {"name": f"pitstop-build-{'k' * 16}-1-source"}}]
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["source"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert "docker-config" not in volumes  # no push secret in this spec


def test_a_secret_copy_is_owned_by_its_attempts_job_and_immutable() -> None:
    job = build_job.job(md(), "k" * 16, 1, SETTINGS)
    job["metadata"]["uid"] = "job-uid"  # as the API server returns it
    source = {
        "metadata": {"name": "regcred", "namespace": "ml", "uid": "s", "resourceVersion": "9"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "e30="},
    }
    copy = build_objects.secret_copy(source, f"pitstop-build-{'k' * 16}-1-push", job)
    meta = copy["metadata"]
    assert (meta["namespace"], meta["name"]) == (
        "pitstop-builds",
        f"pitstop-build-{'k' * 16}-1-push",
    )
    assert meta["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": "job-uid"}
    ]
    assert meta["annotations"][build_objects.COPIED_FROM] == "ml/regcred"
    assert meta["labels"][build_job.BUILD_KEY] == "k" * 16
    assert "uid" not in meta
    assert "resourceVersion" not in meta
    assert (copy["type"], copy["data"], copy["immutable"]) == (source["type"], source["data"], True)


def test_a_record_names_its_key() -> None:
    record = build_objects.record("pitstop-builds", "k" * 16, {"image": "r/m:1"})
    assert record["metadata"]["name"] == f"pitstop-build-{'k' * 16}"
    assert record["metadata"]["namespace"] == "pitstop-builds"
    assert record["data"] == {"image": "r/m:1", "buildKey": "k" * 16}
    assert "ownerReferences" not in record["metadata"]


CONFIG = "sha256:" + "c" * 64
MANIFEST = "sha256:" + "d" * 64


def buildctl_metadata(indent: int | None = 2, **extra: Any) -> str:
    """What `buildctl build --metadata-file` writes after pushing an image: Go's
    json.MarshalIndent of the exporter's response, keys sorted, so the config digest
    comes first (the shape of a real file from BuildKit v0.34 on the real node)."""
    response: dict[str, Any] = {
        "containerimage.config.digest": CONFIG,
        "containerimage.descriptor": {
            "annotations": {
                "config.digest": CONFIG,
                "org.opencontainers.image.created": "2026-11-29T10:12:03Z",
            },
            "digest": MANIFEST,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 1612,
        },
        "containerimage.digest": MANIFEST,
        "image.name": "10.244.0.1:5000/ml/fraud:7-kkkkkkkkkkkkkkkk",
        **extra,
    }
    return json.dumps(response, indent=indent, sort_keys=True)


def record(tmp_path: Path, metadata: str) -> subprocess.CompletedProcess[str]:
    """Run the Job's recording step, as rendered, on `metadata`."""
    _, build = containers(build_job.job(md(), "k" * 16, 1, SETTINGS))
    script = build["command"][-1]
    (tmp_path / "metadata.json").write_text(metadata)
    step = script[script.index(" && ") + len(" && ") :]
    step = step.replace(build_job.BUILDKIT_METADATA, str(tmp_path / "metadata.json"))
    step = step.replace("/dev/termination-log", str(tmp_path / "termination-log"))
    return subprocess.run(["sh", "-c", step], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("indent", [2, None], ids=["indented", "one-line"])
def test_the_buildkit_job_records_the_manifest_digest_not_the_config_digest(
    tmp_path: Path, indent: int | None
) -> None:
    assert (
        "--metadata-file " + build_job.BUILDKIT_METADATA
        in containers(build_job.job(md(), "k" * 16, 1, SETTINGS))[1]["command"][-1]
    )
    done = record(tmp_path, buildctl_metadata(indent))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "termination-log").read_text() == MANIFEST + "\n"


def test_a_metadata_file_without_a_manifest_digest_fails_the_build(tmp_path: Path) -> None:
    without = json.loads(buildctl_metadata())
    del without["containerimage.digest"]
    done = record(tmp_path, json.dumps(without, indent=2))
    assert done.returncode != 0
    assert not (tmp_path / "termination-log").exists()
