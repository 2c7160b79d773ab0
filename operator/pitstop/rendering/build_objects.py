"""What a build keeps in the build namespace besides its Job: the record of a finished
build, and each attempt's copies of the Secrets it needs.

A record (`pitstop-build-<key>`) outlives the Jobs: it is how the same package is never
built twice, by any ModelDeployment in any namespace. It describes what the registry
holds, not one requester, so it has no owner; delete it to build again.

A copy is taken from the requester's namespace when its attempt starts and is owned by
the attempt's Job (same namespace), so garbage collection deletes it with the Job.
"""

from __future__ import annotations

from typing import Any

from pitstop.rendering import build_job, labels

Object = dict[str, Any]

COPIED_FROM = "pitstop.dev/copied-from"
ROLE_SECRET = "build-secret"
ROLE_RECORD = "build-record"


def record_name(key: str) -> str:
    """The ConfigMap recording a finished build of `key`."""
    return f"pitstop-build-{key}"


def record(namespace: str, key: str, data: dict[str, str]) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_name(key),
            "namespace": namespace,
            "labels": {
                labels.MANAGED_BY: "pitstop",
                labels.ROLE: ROLE_RECORD,
                build_job.BUILD_KEY: key,
            },
        },
        "data": {**data, "buildKey": key},
    }


def secret_copy(source: Object, name: str, job: Object) -> Object:
    """A copy of the Secret `source` for the (created) attempt `job`, owned by it.

    Immutable: it belongs to one attempt, whose pods read it when they start."""
    meta = job["metadata"]
    origin = source["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {
                labels.MANAGED_BY: "pitstop",
                labels.ROLE: ROLE_SECRET,
                build_job.BUILD_KEY: meta["labels"][build_job.BUILD_KEY],
                build_job.BUILD_ATTEMPT: meta["labels"][build_job.BUILD_ATTEMPT],
            },
            "annotations": {COPIED_FROM: f"{origin['namespace']}/{origin['name']}"},
            # No blockOwnerDeletion: that would need update on jobs/finalizers.
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "type": source.get("type") or "Opaque",
        "data": dict(source.get("data") or {}),
        "immutable": True,
    }
