"""Render the Job that builds a ModelDeployment's serving image, and name what it makes.

The Job has two steps sharing one emptyDir. The init container runs the operator's
own image (`pitstop package prepare-build`): it fetches the model package, verifies it,
builds the bento and writes the build context with its Dockerfile. The build container
then runs an unprivileged builder, rootless BuildKit by default or kaniko (uid 0 inside
its container), and pushes the image.

Both builders run for real on the dev cluster's real node (tests/realnode), from images
built there of binaries built from their Go modules: BuildKit v0.34 and kaniko v1.23.2
(`github.com/GoogleContainerTools/kaniko`, archived upstream in 2025 but still served
by the module proxy and buildable as it is).

Neither step is privileged. BuildKit rootless needs seccomp and AppArmor unconfined (it
creates user namespaces) and runs as uid 1000; kaniko runs as uid 0 inside its
container, unprivileged. So neither meets the `restricted` Pod Security level (BuildKit
needs `privileged`, kaniko `baseline`): the Job runs in the build namespace
(`BuildSettings.namespace`), not in the ModelDeployment's. Retries are the operator's
(one Job per attempt), so `backoffLimit` is 0 and the build timeout is
`activeDeadlineSeconds`.

Across namespaces: the Job has no owner (owner references cannot cross namespaces; a
finished Job goes after `ttlSecondsAfterFinished`), and the Secrets it needs (registry
push, model source credentials) are copies of the ModelDeployment's, made per attempt
(`secret_copies` here, the copies themselves in `rendering.build_objects`) and owned by the attempt's Job, so they go with it. A
Job that needs copies is created suspended and resumed once they exist: its pods never
start without them.

What the image is called is decided here, before the build runs: the tag is the build
key, a hash of everything that defines the package and its template (source, model
name and version, registry, the operator image that carries the serving template), so
the operator knows the reference of a finished build without reading anything back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pitstop.api import durations
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import BuildCache
from pitstop.rendering import labels

Object = dict[str, Any]

BUILD_KEY = "pitstop.dev/build-key"
BUILD_ATTEMPT = "pitstop.dev/build-attempt"
IMAGE_ANNOTATION = "pitstop.dev/image"
# Who started an attempt (`namespace/name`), for people: a build serves every requester.
REQUESTED_BY = "pitstop.dev/requested-by"
# The Secrets an attempt copies, as JSON {copy name: "namespace/name"}: whoever resumes
# a suspended Job copies what it names, so the Job and its copies always agree.
SECRET_SOURCES = "pitstop.dev/secret-sources"
ROLE_BUILD = "build"
DEFAULT_NAMESPACE = "pitstop-builds"

INIT_CONTAINER = "prepare"
BUILD_CONTAINER = "build"
WORKSPACE = "/workspace"
CONTEXT = f"{WORKSPACE}/context"
# Where BentoML's containerfile generation puts the Dockerfile inside the context.
DOCKERFILE_DIR = f"{CONTEXT}/env/docker"
SOURCE_MOUNT = "/source"
# Where buildctl writes what it pushed (`--metadata-file`), in its HOME.
BUILDKIT_METADATA = "/home/user/metadata.json"
OPERATOR_UID = 65532
BUILDKIT_UID = 1000


@dataclass(frozen=True)
class BuildSettings:
    """The operator-wide part of a build (chart values), fixed while the operator runs."""

    operator_image: str
    namespace: str = DEFAULT_NAMESPACE
    """Where build Jobs, their Secret copies and build records live."""
    buildkit_image: str = "moby/buildkit:v0.23.2-rootless"
    kaniko_image: str = "gcr.io/kaniko-project/executor:v1.23.2"
    default_cache: BuildCache | None = None
    ttl_seconds: int = 3600
    prepare_resources: Object | None = None
    build_resources: Object | None = None


DEFAULT_PREPARE_RESOURCES: Object = {
    "requests": {"cpu": "100m", "memory": "512Mi"},
    "limits": {"memory": "2Gi"},
}
DEFAULT_BUILD_RESOURCES: Object = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"memory": "4Gi"},
}


def source_of(md: ModelDeployment) -> str:
    """The package source as one string: its URI, or pvc://claim/path."""
    source = md.spec.model.source
    if source is None:
        raise ValueError("spec.model.source is required for a build")
    if source.pvc is not None:
        return f"pvc://{source.pvc.claim_name}/{source.pvc.path.lstrip('/')}"
    assert source.uri is not None  # the CRD requires exactly one of uri and pvc
    return source.uri


def build_key(md: ModelDeployment, settings: BuildSettings) -> str:
    """16 hex digits naming one build: equal keys would produce the same image."""
    assert md.spec.build is not None
    identity = {
        "source": source_of(md),
        "model": md.spec.model.name,
        "version": md.spec.model.version,
        "registry": md.spec.build.registry.rstrip("/"),
        # The operator image carries the serving template and the packaging code.
        "template": settings.operator_image,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def image_ref(md: ModelDeployment, key: str) -> str:
    """`<registry>/<model>:<version>-<key>`: readable, and unique per build key."""
    assert md.spec.build is not None
    registry = md.spec.build.registry.rstrip("/")
    tag = f"{md.spec.model.version}-{key}"[-128:]
    return f"{registry}/{md.spec.model.name}:{tag}"


def job_name(key: str, attempt: int) -> str:
    return f"pitstop-build-{key}-{attempt}"


def key_selector(key: str) -> str:
    return f"{BUILD_KEY}={key},{labels.MANAGED_BY}=pitstop"


def attempt_selector(key: str, attempt: int) -> str:
    return f"{key_selector(key)},{BUILD_ATTEMPT}={attempt}"


def copy_name(key: str, attempt: int, use: Literal["push", "source"]) -> str:
    """The build namespace's copy of a Secret one attempt needs."""
    return f"{job_name(key, attempt)}-{use}"


def secret_copies(md: ModelDeployment, key: str, attempt: int) -> dict[str, str]:
    """{copy name: "namespace/name" of its source} for the Secrets the attempt needs."""
    build, source = md.spec.build, md.spec.model.source
    assert build is not None
    assert source is not None
    ns = md.metadata.namespace
    found = {}
    if build.push_secret is not None:
        found[copy_name(key, attempt, "push")] = f"{ns}/{build.push_secret}"
    if source.credentials_secret is not None:
        found[copy_name(key, attempt, "source")] = f"{ns}/{source.credentials_secret}"
    return found


def _builder_cache_args(builder: Literal["buildkit", "kaniko"], cache: BuildCache) -> list[str]:
    if builder == "kaniko":
        # kaniko reads and writes one cache repository; it has no read-only mode.
        return ["--cache=true", f"--cache-repo={cache.repository}"] if cache.export else []
    ref = f"type=registry,ref={cache.repository}"
    args = ["--import-cache", ref]
    if cache.export:
        args += ["--export-cache", f"{ref},mode={cache.mode}"]
    return args


def _build_container(md: ModelDeployment, image: str, settings: BuildSettings) -> Object:
    build = md.spec.build
    assert build is not None
    cache = build.cache or settings.default_cache
    cache_args = _builder_cache_args(build.builder, cache) if cache is not None else []
    resources = settings.build_resources or DEFAULT_BUILD_RESOURCES
    mounts: list[Object] = [{"name": "workspace", "mountPath": WORKSPACE, "readOnly": True}]
    container: Object
    if build.builder == "kaniko":
        if build.push_secret is not None:
            mounts.append({"name": "docker-config", "mountPath": "/kaniko/.docker"})
        container = {
            "name": BUILD_CONTAINER,
            "image": settings.kaniko_image,
            "args": [
                f"--context=dir://{CONTEXT}",
                f"--dockerfile={DOCKERFILE_DIR}/Dockerfile",
                f"--destination={image}",
                # The image's manifest digest becomes the termination message the
                # operator reads: the registry serves the same one (checked on the real
                # node). kaniko writes it before it pushes, so a Job whose push failed
                # has one too: the operator reads it from completed Jobs only, and no
                # failure is explained by it (images.observation).
                "--digest-file=/dev/termination-log",
                *cache_args,
            ],
            "env": [{"name": "DOCKER_CONFIG", "value": "/kaniko/.docker"}],
            "securityContext": {
                "runAsUser": 0,  # kaniko unpacks images as root inside its container
                "privileged": False,
                "allowPrivilegeEscalation": False,
            },
        }
    else:
        mounts.append({"name": "buildkitd", "mountPath": "/home/user/.local/share/buildkit"})
        if build.push_secret is not None:
            mounts.append({"name": "docker-config", "mountPath": "/home/user/.docker"})
        command = [
            "buildctl-daemonless.sh", "build",
            "--frontend", "dockerfile.v0",
            "--local", f"context={CONTEXT}",
            "--local", f"dockerfile={DOCKERFILE_DIR}",
            "--output", f"type=image,name={image},push=true",
            "--metadata-file", BUILDKIT_METADATA,
            *cache_args,
        ]  # fmt: skip
        # The pushed digest becomes the termination message the operator reads.
        script = (
            " ".join(_quote(part) for part in command)
            + " && "
            + record_manifest_digest(BUILDKIT_METADATA, "/dev/termination-log")
        )
        container = {
            "name": BUILD_CONTAINER,
            "image": settings.buildkit_image,
            "command": ["sh", "-c", script],
            "env": [
                {"name": "BUILDKITD_FLAGS", "value": "--oci-worker-no-process-sandbox"},
                {"name": "DOCKER_CONFIG", "value": "/home/user/.docker"},
            ],
            # What BuildKit rootless requires (user namespaces), and no more: not
            # privileged, no added capabilities.
            "securityContext": {
                "runAsUser": BUILDKIT_UID,
                "runAsGroup": BUILDKIT_UID,
                "runAsNonRoot": True,
                "privileged": False,
                "seccompProfile": {"type": "Unconfined"},
                "appArmorProfile": {"type": "Unconfined"},
            },
        }
    container["volumeMounts"] = mounts
    container["resources"] = resources
    # A failed build's termination message is the tail of its log.
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return container


def record_manifest_digest(metadata_file: str, destination: str) -> str:
    """The shell step that writes the pushed image's manifest digest, read from
    buildctl's `--metadata-file`, into `destination`; it fails when there is none.

    The file is Go's indented JSON with sorted keys, so the first sha256 in it is
    `containerimage.config.digest` (the config blob's, which no registry serves as a
    manifest); the manifest's is the value of `containerimage.digest`. Only sed: the
    builder image need not have a JSON tool."""
    pattern = r'.*"containerimage\.digest": *"\(sha256:[a-f0-9]\{64\}\)".*'
    return (
        f"digest=$(sed -n 's/{pattern}/\\1/p' {metadata_file})"
        f' && test -n "$digest" && echo "$digest" > {destination}'
    )


def _quote(part: str) -> str:
    safe = all(c.isalnum() or c in "-_=.,:/@+" for c in part)
    return part if safe else "'" + part.replace("'", "'\"'\"'") + "'"


def _prepare_container(
    md: ModelDeployment, image: str, key: str, attempt: int, settings: BuildSettings
) -> Object:
    build, source = md.spec.build, md.spec.model.source
    assert build is not None
    assert source is not None
    where = source.uri
    mounts: list[Object] = [
        {"name": "workspace", "mountPath": WORKSPACE},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if source.pvc is not None:
        where = f"{SOURCE_MOUNT}/{source.pvc.path.lstrip('/')}"
        mounts.append({"name": "source", "mountPath": SOURCE_MOUNT, "readOnly": True})
    container: Object = {
        "name": INIT_CONTAINER,
        "image": settings.operator_image,
        "command": ["pitstop", "package", "prepare-build"],
        "args": [
            f"--source={where}",
            f"--name={md.spec.model.name}",
            f"--version={md.spec.model.version}",
            f"--builder={build.builder}",
            f"--image={image}",
            f"--build-key={key}",
            f"--output={CONTEXT}",
            "--termination-log=/dev/termination-log",
        ],
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "BENTOML_HOME", "value": "/tmp/bentoml"},
        ],
        "volumeMounts": mounts,
        "resources": settings.prepare_resources or DEFAULT_PREPARE_RESOURCES,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsUser": OPERATOR_UID,
            "runAsGroup": OPERATOR_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if source.credentials_secret is not None:
        # AWS_* keys for s3://, HTTP_BEARER_TOKEN for https:// (see packaging.fetch).
        source_copy = copy_name(key, attempt, "source")
        container["envFrom"] = [{"secretRef": {"name": source_copy}}]
    return container


def job(md: ModelDeployment, key: str, attempt: int, settings: BuildSettings) -> Object:
    """Attempt `attempt` (1-based) of the build `key` for `md`."""
    build, source = md.spec.build, md.spec.model.source
    if build is None or source is None:
        raise ValueError("spec.build and spec.model.source are required for a build")
    image = image_ref(md, key)
    # No ModelDeployment name: a build serves every requester of its key, in any
    # namespace (the annotation says who started it).
    pod_labels = {
        labels.MANAGED_BY: "pitstop",
        labels.ROLE: ROLE_BUILD,
        BUILD_KEY: key,
        BUILD_ATTEMPT: str(attempt),
    }
    build_labels = {
        **pod_labels,
        labels.MODEL: md.spec.model.name,
        labels.MODEL_VERSION: md.spec.model.version,
    }
    copies = secret_copies(md, key, attempt)
    annotations = {
        IMAGE_ANNOTATION: image,
        REQUESTED_BY: f"{md.metadata.namespace}/{md.metadata.name}",
    }
    if copies:
        annotations[SECRET_SOURCES] = json.dumps(copies, sort_keys=True)
    volumes: list[Object] = [
        {"name": "workspace", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if build.builder == "buildkit":
        volumes.append({"name": "buildkitd", "emptyDir": {}})
    if build.push_secret is not None:
        volumes.append(
            {
                "name": "docker-config",
                "secret": {
                    "secretName": copy_name(key, attempt, "push"),
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        )
    if source.pvc is not None:
        volumes.append(
            {
                "name": "source",
                "persistentVolumeClaim": {"claimName": source.pvc.claim_name, "readOnly": True},
            }
        )
    deadline = max(1, int(durations.parse(build.timeout).total_seconds()))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(key, attempt),
            "namespace": settings.namespace,
            "labels": build_labels,
            "annotations": annotations,
        },
        "spec": {
            # Held until its Secret copies exist (images.resolve resumes it).
            "suspend": bool(copies),
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": settings.ttl_seconds,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"fsGroup": BUILDKIT_UID},
                    "initContainers": [_prepare_container(md, image, key, attempt, settings)],
                    "containers": [_build_container(md, image, settings)],
                    "volumes": volumes,
                },
            },
        },
    }
