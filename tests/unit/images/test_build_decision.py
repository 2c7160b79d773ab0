"""The build policy as a table: (record, attempts, missing inputs, clock) -> (condition,
next step).

Reading this table is the specification of how Pitstop builds: one Job per attempt, at
most three attempts with doubling backoff, a finished build recorded and reused, an
attempt held until the Secrets it copies exist, and a builder the installation does not
enable refused up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pitstop.images import decision
from pitstop.images.decision import Attempt, Build, Policy, Record

IMAGE = "registry.example.com/ml/fraud:7-0123456789abcdef"
DIGEST = "sha256:" + "a" * 64
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(max_attempts=3, backoff_seconds=30, max_backoff_seconds=600, poll_seconds=10)


def running(n: int) -> Attempt:
    return Attempt(n, f"pitstop-build-k-{n}", "Running")


def failed(
    n: int,
    at: datetime = T0,
    reason: str = "BackoffLimitExceeded",
    detail: str = "build step: error: failed to solve",
    reported: bool = False,
) -> Attempt:
    job = f"pitstop-build-k-{n}"
    return Attempt(n, job, "Failed", reason, at, detail, reported=reported)


def pending(n: int, missing: tuple[str, ...] = ()) -> Attempt:
    return Attempt(n, f"pitstop-build-k-{n}", "Pending", missing=missing)


def succeeded(n: int, digest: str | None = DIGEST) -> Attempt:
    return Attempt(n, f"pitstop-build-k-{n}", "Succeeded", digest=digest, package_digest="sha256:p")


@dataclass(frozen=True)
class Case:
    name: str
    record: Record | None
    attempts: list[Attempt]
    now: datetime
    status: str
    reason: str
    image: str | None = None
    start: int | None = None
    writes_record: bool = False
    announced: tuple[str, ...] = ()
    message_has: str = ""
    missing: tuple[str, ...] = ()
    launch: str | None = None
    builder: str = "buildkit"


REGCRED = "Secret ml/regcred"


CASES = [
    Case("nothing yet: start attempt 1", None, [], T0, "False", "Building", start=1,
         message_has="attempt 1/3"),
    Case("attempt 1 running: wait", None, [running(1)], T0, "False", "Building",
         message_has="attempt 1/3"),
    Case("recorded build: reuse it, pinned by digest", Record(IMAGE, DIGEST, "sha256:p"), [],
         T0, "True", "Built", image=f"{IMAGE}@{DIGEST}", message_has="from package sha256:p"),
    Case("record without digest: the tag", Record(IMAGE), [], T0, "True", "Built", image=IMAGE),
    Case("record wins over failed jobs", Record(IMAGE, DIGEST), [failed(1)], T0, "True",
         "Built", image=f"{IMAGE}@{DIGEST}"),
    Case("attempt succeeded: record it", None, [succeeded(1)], T0, "True", "Built",
         image=f"{IMAGE}@{DIGEST}", writes_record=True),
    Case("success without a digest (no termination message): the tag", None,
         [succeeded(1, digest=None)], T0, "True", "Built", image=IMAGE, writes_record=True),
    Case("success after a failure", None, [failed(1), succeeded(2)], T0, "True", "Built",
         image=f"{IMAGE}@{DIGEST}", writes_record=True),
    Case("attempt 1 failed, inside backoff: wait and announce", None, [failed(1)],
         T0 + timedelta(seconds=29), "False", "Building", announced=("pitstop-build-k-1",),
         message_has="retrying in 1s"),
    Case("attempt 1 failed, backoff over: start attempt 2", None, [failed(1)],
         T0 + timedelta(seconds=30), "False", "Building", start=2,
         announced=("pitstop-build-k-1",), message_has="retrying as attempt 2/3"),
    Case("attempt 2 failed: backoff doubles", None,
         [failed(1, reported=True), failed(2, T0 + timedelta(seconds=40))],
         T0 + timedelta(seconds=99), "False", "Building", announced=("pitstop-build-k-2",),
         message_has="retrying in 1s"),
    Case("attempt 2 failed, doubled backoff over: attempt 3", None,
         [failed(1, reported=True), failed(2, T0 + timedelta(seconds=40), reported=True)],
         T0 + timedelta(seconds=100), "False", "Building", start=3),
    Case("retry running, previous failure shown", None, [failed(1, reported=True), running(2)],
         T0, "False", "Building", message_has="previous build attempt 1/3"),
    Case("three failures: BuildFailed, no more attempts", None,
         [failed(1, reported=True), failed(2, reported=True), failed(3)],
         T0 + timedelta(hours=1), "False", "BuildFailed", announced=("pitstop-build-k-3",),
         message_has="failed to solve"),
    Case("last attempt timed out: BuildTimedOut", None,
         [failed(1, reported=True), failed(2, reported=True),
          failed(3, reason="DeadlineExceeded", detail="", reported=True)],
         T0, "False", "BuildTimedOut", message_has="(DeadlineExceeded)"),
    Case("already announced failures are not announced again", None,
         [failed(1, reported=True), failed(2, reported=True), failed(3, reported=True)],
         T0, "False", "BuildFailed"),
    # Inputs: the Secrets an attempt copies into the build namespace, a pvc source's claim.
    Case("a Secret to copy is missing: no attempt, the condition names it", None, [], T0,
         "False", "BuildInputMissing", missing=(REGCRED,), message_has=REGCRED),
    Case("missing inputs do not matter to a recorded build", Record(IMAGE), [], T0, "True",
         "Built", image=IMAGE, missing=(REGCRED,)),
    Case("missing inputs do not stop a running attempt", None, [running(1)], T0, "False",
         "Building", missing=(REGCRED,)),
    Case("a retry due without its inputs waits for them", None, [failed(1)],
         T0 + timedelta(seconds=30), "False", "BuildInputMissing",
         announced=("pitstop-build-k-1",), missing=(REGCRED,), message_has=REGCRED),
    Case("a suspended attempt is launched: copies made, Job resumed", None, [pending(1)], T0,
         "False", "Building", launch="pitstop-build-k-1", message_has="attempt 1/3"),
    Case("a suspended attempt whose Secret went waits for it", None,
         [pending(1, missing=(REGCRED,))], T0, "False", "BuildInputMissing",
         message_has=REGCRED),
    Case("a suspended retry is launched, the failure before it announced", None,
         [failed(1), pending(2)], T0, "False", "Building", launch="pitstop-build-k-2",
         announced=("pitstop-build-k-1",)),
    # Builders: the build namespace's Pod Security level admits the enabled ones only.
    Case("a builder not enabled is refused up front", None, [], T0, "False",
         "BuildUnavailable", builder="docker", message_has="build.builders"),
    Case("a builder not enabled still reuses a recorded build", Record(IMAGE), [], T0,
         "True", "Built", image=IMAGE, builder="docker"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_build_decision(case: Case) -> None:
    build = Build(IMAGE, case.builder, case.record, tuple(case.attempts), case.missing)
    step = decision.decide(build, POLICY, case.now)
    assert (step.outcome.status, step.outcome.reason) == (case.status, case.reason)
    assert step.outcome.image == case.image
    assert step.start_attempt == case.start
    assert step.launch == case.launch
    assert (step.record is not None) == case.writes_record
    assert tuple(f.job for f in step.announce) == case.announced
    assert case.message_has in step.outcome.message
    if case.status == "False" and case.reason in {"Building", "BuildInputMissing"}:
        assert step.outcome.requeue_after is not None
        assert 0 < step.outcome.requeue_after <= POLICY.poll_seconds


def test_a_recorded_build_carries_both_digests() -> None:
    step = decision.decide(Build(IMAGE, "buildkit", attempts=(succeeded(1),)), POLICY, T0)
    assert step.record == Record(IMAGE, DIGEST, "sha256:p")


def test_a_failure_is_announced_with_its_reason_and_log_tail() -> None:
    long_log = "x" * 2000 + " the real error"
    attempts = (failed(1, reason="DeadlineExceeded", detail=long_log),)
    step = decision.decide(Build(IMAGE, "buildkit", attempts=attempts), POLICY, T0)
    [failure] = step.announce
    assert failure.reason == "BuildTimedOut"
    assert failure.message.endswith("the real error")
    assert len(failure.message) < 800  # a tail, not the whole log


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [POLICY.backoff(n) for n in (1, 2, 3, 6, 10)] == [30, 60, 120, 600, 600]
