"""What the API holds about a build, read into the values `images.decision` decides on.

Pure functions of API objects (as plain dicts): a build record ConfigMap, an attempt's
Job and its pods. `images.resolve` fetches them and, where a failed step's log is
needed, asks `failed_step` which container to read; nothing here talks to the API or
decides anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pitstop.images import decision
from pitstop.rendering import build_job

Object = dict[str, Any]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
REPORTED_PREFIX = "reported.pitstop.dev/"
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


def reported_annotation(namespace: str, name: str) -> str:
    """Marks a failed Job as announced to one ModelDeployment (one Event each).

    Requesters come from any namespace and an annotation's name holds 63 characters,
    so the key is a hash of `namespace/name` (the value names it)."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:16]
    return REPORTED_PREFIX + digest


def pods_selector(job: Object) -> str:
    return f"{JOB_NAME_LABEL}={job['metadata']['name']}"


def record(obj: Object | None) -> decision.Record | None:
    data = (obj or {}).get("data") or {}
    if not data.get("image"):
        return None
    return decision.Record(data["image"], data.get("digest") or None, data.get("packageDigest"))


def record_data(found: decision.Record) -> dict[str, str]:
    data = {"image": found.image}
    if found.digest:
        data["digest"] = found.digest
    if found.package_digest:
        data["packageDigest"] = found.package_digest
    return data


def secret_sources(job: Object) -> dict[str, tuple[str, str]]:
    """{copy name: (namespace, name) of its source} as the Job's annotation names them."""
    text = ((job["metadata"].get("annotations") or {}).get(build_job.SECRET_SOURCES)) or "{}"
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        str(copy): (ref.partition("/")[0], ref.partition("/")[2])
        for copy, ref in found.items()
        if isinstance(ref, str) and "/" in ref
    }


def suspended(job: Object) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def _condition(job: Object, type_: str) -> Object | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return dict(condition)
    return None


def failed(job: Object) -> bool:
    return _condition(job, "Failed") is not None


def started(job: Object) -> datetime | None:
    """When the Job's first pod started (its status.startTime)."""
    return _time((job.get("status") or {}).get("startTime"))


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _terminated(pod: Object, container: str) -> Object | None:
    status = pod.get("status") or {}
    for item in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        if item.get("name") == container:
            terminated = (item.get("state") or {}).get("terminated")
            return dict(terminated) if terminated else None
    return None


@dataclass(frozen=True)
class FailedStep:
    """The container that failed an attempt, whose log tail explains it."""

    pod: str
    container: str
    exit_code: int
    reason: str
    message: str


def failed_step(pods: list[Object]) -> FailedStep | None:
    """The first container (prepare, then build) that exited non-zero."""
    for pod in pods:
        for container in (build_job.INIT_CONTAINER, build_job.BUILD_CONTAINER):
            terminated = _terminated(pod, container)
            if terminated is None or int(terminated.get("exitCode") or 0) == 0:
                continue
            return FailedStep(
                pod["metadata"]["name"],
                container,
                int(terminated.get("exitCode") or 0),
                terminated.get("reason") or "",
                terminated.get("message") or "",
            )
    return None


def failure_detail(step: FailedStep | None, log_tail: str | None) -> str:
    """Why the failing step failed, in the builder's own words: the error lines of the
    command that failed (pip's or uv's, a compiler's) before BuildKit's summary of the
    step; else the log's last lines, the termination message, or the exit status (KWOK's
    nodes and a node that went away serve no logs)."""
    if step is None:
        return ""
    if log_tail:
        causes = _causes(log_tail)
        lines = log_tail.strip().splitlines()
        # With causes: them, then the log's last line (BuildKit's summary of the step).
        text = "\n".join([*causes, lines[-1]] if causes else lines[-_TAIL:])
    else:
        # A bare digest is no explanation: kaniko writes its --digest-file (the
        # termination message) before it pushes, so a failed push leaves one.
        said = "" if _DIGEST.fullmatch(step.message.strip()) else step.message
        text = said or f"exit code {step.exit_code} ({step.reason})"
    return f"{step.container} step: {text.strip()}"


_TAIL = 20  # lines of the log's end kept after the causes
_MOST_CAUSES = 6
# BuildKit's plain progress prefixes a step's output with "#<step> <seconds> ".
_STEP_OUTPUT = re.compile(r"^#\d+ \d+(\.\d+)? (?P<text>.*)$")
_CAUSE = re.compile(
    r"(^|\s)(ERROR|error|Error)\b[:\s]|^\s*(\u00d7|╰─▶|cause:)|No solution found|"
    r"Could not find a version|No matching distribution|ModuleNotFoundError|Traceback"
)


def _causes(log: str) -> list[str]:
    """The output lines of BuildKit's steps that say what went wrong, with the indented
    lines that continue each (uv's `  cause: Because …` and its wrapped lines), in order,
    stripped, repeats dropped, at most `_MOST_CAUSES`."""
    found: list[str] = []
    continuing = False
    for line in log.splitlines():
        step = _STEP_OUTPUT.match(line)
        if step is None:
            continuing = False
            continue
        text = step.group("text").rstrip()
        if _CAUSE.search(text) or (continuing and text[:1].isspace()):
            continuing = True
            if text.strip() not in found:
                found.append(text.strip())
        else:
            continuing = False
    return found[:_MOST_CAUSES]


def _from_termination(pods: list[Object], container: str) -> list[str]:
    return [(_terminated(pod, container) or {}).get("message") or "" for pod in pods]


def _package_digest(pods: list[Object]) -> str | None:
    for message in _from_termination(pods, build_job.INIT_CONTAINER):
        try:
            found = json.loads(message).get("packageDigest")
        except (ValueError, AttributeError):
            continue
        if isinstance(found, str):
            return found
    return None


def _image_digest(pods: list[Object]) -> str | None:
    for message in _from_termination(pods, build_job.BUILD_CONTAINER):
        match = _DIGEST.search(message)
        if match:
            return match.group(0)
    return None


def attempt(
    job: Object,
    pods: list[Object],
    requester: tuple[str, str],
    detail: str = "",
    missing: tuple[str, ...] = (),
) -> decision.Attempt:
    """One attempt as `requester` (namespace, name) sees it: `detail` is the failure's
    explanation (`failure_detail`), `missing` a suspended Job's Secrets that do not exist."""
    meta = job["metadata"]
    number = int((meta.get("labels") or {}).get(build_job.BUILD_ATTEMPT, "1"))
    name = meta["name"]
    package_digest = _package_digest(pods)
    if _condition(job, "Complete") is not None:
        digest = _image_digest(pods)
        return decision.Attempt(
            number, name, "Succeeded", digest=digest, package_digest=package_digest
        )
    failure = _condition(job, "Failed")
    if failure is None:
        if suspended(job):
            return decision.Attempt(number, name, "Pending", missing=missing)
        return decision.Attempt(number, name, "Running", package_digest=package_digest)
    reported = reported_annotation(*requester) in (meta.get("annotations") or {})
    return decision.Attempt(
        number,
        name,
        "Failed",
        reason=failure.get("reason") or "",
        finished_at=_time(failure.get("lastTransitionTime")),
        detail=detail or failure.get("message") or "",
        package_digest=package_digest,
        reported=reported,
    )
