"""Reading a build's Jobs, pods and record into what the decision sees, as a table.

An attempt is Pending while its Job is suspended (waiting for its Secret copies),
Running until the Job controller says Complete or Failed; a failure is explained by the
first failed step's log tail (or its exit status when no log exists), and counts as
reported to one requester (namespace and name) only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pitstop.images import decision, observation
from pitstop.images.observation import FailedStep

DIGEST = "sha256:" + "b" * 64
PACKAGE = "sha256:" + "c" * 64
FINISHED = "2025-01-01T12:00:00Z"
ML = ("ml", "fraud")


def job(
    *conditions: tuple[str, str],
    suspend: bool = False,
    annotations: dict[str, str] | None = None,
    attempt: str = "2",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "pitstop-build-k-2",
            "namespace": "pitstop-builds",
            "labels": {"pitstop.dev/build-attempt": attempt},
            "annotations": annotations or {},
        },
        "spec": {"suspend": suspend},
        "status": {
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "lastTransitionTime": FINISHED,
                    "message": f"Job has reached the specified {t}",
                }
                for t, r in conditions
            ]
        },
    }


def pod(
    prepare: dict[str, Any] | None = None, build: dict[str, Any] | None = None
) -> dict[str, Any]:
    def status(name: str, terminated: dict[str, Any] | None) -> dict[str, Any]:
        state = {"terminated": terminated} if terminated else {"running": {}}
        return {"name": name, "state": state}

    return {
        "metadata": {"name": "pitstop-build-k-2-x", "namespace": "pitstop-builds"},
        "status": {
            "initContainerStatuses": [status("prepare", prepare)],
            "containerStatuses": [status("build", build)],
        },
    }


PREPARED = {"exitCode": 0, "message": json.dumps({"packageDigest": PACKAGE})}
PUSHED = {"exitCode": 0, "message": f"{DIGEST}\n"}
BUILD_ERROR = {"exitCode": 1, "reason": "Error", "message": "error: failed to solve"}
KWOK_ERROR = {"exitCode": 1, "reason": "Error"}  # KWOK writes no termination message
REPORTED = {observation.reported_annotation(*ML): "ml/fraud"}
OTHER_REPORTED = {observation.reported_annotation("eu", "fraud"): "eu/fraud"}


@dataclass(frozen=True)
class Case:
    name: str
    job: dict[str, Any]
    pods: list[dict[str, Any]]
    expected: decision.Attempt
    log_tail: str | None = None
    missing: tuple[str, ...] = field(default=())


J = "pitstop-build-k-2"
CASES = [
    Case("suspended: pending, with what it waits for", job(suspend=True), [],
         decision.Attempt(2, J, "Pending", missing=("Secret ml/regcred",)),
         missing=("Secret ml/regcred",)),
    Case("no condition: running", job(), [pod(PREPARED)],
         decision.Attempt(2, J, "Running", package_digest=PACKAGE)),
    Case("complete: the digests from the termination messages", job(("Complete", "")),
         [pod(PREPARED, PUSHED)],
         decision.Attempt(2, J, "Succeeded", digest=DIGEST, package_digest=PACKAGE)),
    Case("complete without termination messages: no digests", job(("Complete", "")),
         [pod({"exitCode": 0}, {"exitCode": 0})], decision.Attempt(2, J, "Succeeded")),
    Case("failed: the failing step's log tail", job(("Failed", "BackoffLimitExceeded")),
         [pod(PREPARED, BUILD_ERROR)],
         decision.Attempt(2, J, "Failed", "BackoffLimitExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "build step: ERROR: failed to solve: no such host",
                          package_digest=PACKAGE),
         log_tail="ERROR: failed to solve: no such host\n"),
    Case("failed, no log: the termination message", job(("Failed", "BackoffLimitExceeded")),
         [pod(PREPARED, BUILD_ERROR)],
         decision.Attempt(2, J, "Failed", "BackoffLimitExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "build step: error: failed to solve", package_digest=PACKAGE)),
    # kaniko writes its --digest-file before it pushes: a failed push leaves a digest
    # as the termination message, which explains nothing.
    Case("failed push, no log, only kaniko's digest as the message: the exit status",
         job(("Failed", "BackoffLimitExceeded")),
         [pod(PREPARED, {**BUILD_ERROR, "message": DIGEST})],
         decision.Attempt(2, J, "Failed", "BackoffLimitExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "build step: exit code 1 (Error)", package_digest=PACKAGE)),
    Case("failed in prepare, no log nor message: the exit status",
         job(("Failed", "BackoffLimitExceeded")), [pod(KWOK_ERROR)],
         decision.Attempt(2, J, "Failed", "BackoffLimitExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "prepare step: exit code 1 (Error)")),
    Case("deadline, no pod left: the Job's message", job(("Failed", "DeadlineExceeded")), [],
         decision.Attempt(2, J, "Failed", "DeadlineExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "Job has reached the specified Failed")),
    Case("reported to this requester", job(("Failed", "DeadlineExceeded"),
         annotations=REPORTED), [],
         decision.Attempt(2, J, "Failed", "DeadlineExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "Job has reached the specified Failed", reported=True)),
    Case("reported to a namesake in another namespace only: not to this one",
         job(("Failed", "DeadlineExceeded"), annotations=OTHER_REPORTED), [],
         decision.Attempt(2, J, "Failed", "DeadlineExceeded",
                          datetime(2025, 1, 1, 12, tzinfo=UTC),
                          "Job has reached the specified Failed")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attempt(case: Case) -> None:
    step = observation.failed_step(case.pods) if observation.failed(case.job) else None
    detail = observation.failure_detail(step, case.log_tail) if step or case.log_tail else ""
    found = observation.attempt(case.job, case.pods, ML, detail, case.missing)
    assert found == case.expected


def test_the_failed_step_is_the_first_container_that_exited_non_zero() -> None:
    assert observation.failed_step([pod(PREPARED)]) is None
    assert observation.failed_step([pod(KWOK_ERROR)]) == FailedStep(
        "pitstop-build-k-2-x", "prepare", 1, "Error", ""
    )
    step = observation.failed_step([pod(PREPARED, BUILD_ERROR)])
    assert step is not None
    assert (step.container, step.message) == ("build", "error: failed to solve")


def test_a_record_is_read_back_as_written() -> None:
    written = decision.Record("r/m:1-k", DIGEST, PACKAGE)
    assert observation.record({"data": observation.record_data(written)}) == written
    assert observation.record({"data": {"image": "r/m:1-k"}}) == decision.Record("r/m:1-k")
    assert observation.record(None) is None
    assert observation.record({"data": {"buildKey": "k"}}) is None


def test_secret_sources_come_from_the_jobs_annotation() -> None:
    sources = {"pitstop-build-k-2-push": "ml/regcred", "pitstop-build-k-2-source": "ml/s3"}
    annotated = job(suspend=True, annotations={"pitstop.dev/secret-sources": json.dumps(sources)})
    assert observation.secret_sources(annotated) == {
        "pitstop-build-k-2-push": ("ml", "regcred"),
        "pitstop-build-k-2-source": ("ml", "s3"),
    }
    assert observation.secret_sources(job()) == {}
    broken = job(annotations={"pitstop.dev/secret-sources": "not json"})
    assert observation.secret_sources(broken) == {}


def test_reported_annotations_are_valid_keys_for_any_requester() -> None:
    key = observation.reported_annotation("n" * 63, "m" * 253)
    prefix, _, name = key.partition("/")
    assert prefix == "reported.pitstop.dev"
    assert len(name) <= 63
    assert key != observation.reported_annotation("n" * 63, "m" * 252)


# BuildKit's plain progress for a bento whose requirements cannot be installed, as the
# real node's build of fraud 9 wrote it (buildctl v0.34, BentoML's Dockerfile, uv).
UNINSTALLABLE = """\
#14 [base-container 10/12] RUN  --mount=type=cache,sharing=locked,target=/root/.cache/ uv pip install -r /home/bentoml/bento/env/python/requirements.txt
#14 0.142 Using Python 3.11.2 environment at: /app/.venv
#14 0.397 error: No solution found when resolving dependencies
#14 0.397   cause: Because scikit-learn>=1.9.1 depends on scipy>=1.10.0 and you require scikit-learn==1.9.1, we can conclude that you require scipy>=1.10.0.
#14 0.397          And because you require scipy==0.0.0.dev0, we can conclude that your requirements are unsatisfiable.
#14 ERROR: process "/bin/sh -c uv pip install -r $BENTO_PATH/env/python/requirements.txt" did not complete successfully: exit code: 1
------
 > [base-container 10/12] RUN  uv pip install -r /home/bentoml/bento/env/python/requirements.txt:
0.142 Using Python 3.11.2 environment at: /app/.venv
0.397 error: No solution found when resolving dependencies
------
Dockerfile:71
--------------------
  71 | >>> RUN uv pip install -r requirements.txt
--------------------
error: failed to solve: process "/bin/sh -c uv pip install -r $BENTO_PATH/env/python/requirements.txt" did not complete successfully: exit code: 1
"""
PIP_ERROR = """\
#9 3.2 ERROR: Could not find a version that satisfies the requirement scipy==0.0.0.dev0 (from versions: 1.11.4)
#9 3.2 ERROR: No matching distribution found for scipy==0.0.0.dev0
#9 ERROR: process "/bin/sh -c pip install -r requirements.txt" did not complete successfully: exit code: 1
error: failed to solve: process "/bin/sh -c pip install -r requirements.txt" did not complete successfully: exit code: 1
"""


@pytest.mark.parametrize(("log", "words"), [
    (UNINSTALLABLE, ["error: No solution found when resolving dependencies",
                     "cause: Because scikit-learn>=1.9.1 depends on scipy>=1.10.0",
                     "And because you require scipy==0.0.0.dev0"]),
    (PIP_ERROR, ["ERROR: Could not find a version that satisfies the requirement scipy==0.0.0.dev0",
                 "ERROR: No matching distribution found for scipy==0.0.0.dev0"]),
])  # fmt: skip
def test_a_failed_install_is_explained_by_the_installers_own_lines(
    log: str, words: list[str]
) -> None:
    step = FailedStep("p", "build", 1, "Error", "")
    detail = observation.failure_detail(step, log)
    assert detail.startswith(f"build step: {words[0]}")
    for line in words:
        assert line in detail
    assert detail.endswith("did not complete successfully: exit code: 1")
    failed = decision.Attempt(1, "job-1", "Failed", "BackoffLimitExceeded",
                              datetime(2025, 1, 1, 12, tzinfo=UTC), detail)  # fmt: skip
    policy = decision.Policy(max_attempts=1, backoff_seconds=30, max_backoff_seconds=600,
                             poll_seconds=10)  # fmt: skip
    step = decision.decide(decision.Build("r/fraud:9", "buildkit", attempts=(failed,)), policy,
                           datetime(2025, 1, 1, 12, 1, tzinfo=UTC))  # fmt: skip
    message = step.outcome.message
    assert "scipy==0.0.0.dev0" in message  # the cause survives the shortening
    assert "did not complete successfully" in message
    assert len(message) < decision.DETAIL_CHARS + 200
