"""The build retry policy as a table: (record, attempts, clock) -> (condition, next step).

Reading this table is the specification of how Pitstop builds: one Job per attempt, at
most three attempts with doubling backoff, a finished build recorded and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pitstop.images import decision
from pitstop.images.decision import Attempt, Policy, Record

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
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_build_decision(case: Case) -> None:
    step = decision.decide(IMAGE, case.record, case.attempts, POLICY, case.now)
    assert (step.outcome.status, step.outcome.reason) == (case.status, case.reason)
    assert step.outcome.image == case.image
    assert step.start_attempt == case.start
    assert (step.record is not None) == case.writes_record
    assert tuple(f.job for f in step.announce) == case.announced
    assert case.message_has in step.outcome.message
    if case.status == "False" and case.reason == "Building":
        assert step.outcome.requeue_after is not None
        assert 0 < step.outcome.requeue_after <= POLICY.poll_seconds


def test_a_recorded_build_carries_both_digests() -> None:
    step = decision.decide(IMAGE, None, [succeeded(1)], POLICY, T0)
    assert step.record == Record(IMAGE, DIGEST, "sha256:p")


def test_a_failure_is_announced_with_its_reason_and_log_tail() -> None:
    long_log = "x" * 2000 + " the real error"
    step = decision.decide(IMAGE, None, [failed(1, reason="DeadlineExceeded", detail=long_log)],
                           POLICY, T0)  # fmt: skip
    [failure] = step.announce
    assert failure.reason == "BuildTimedOut"
    assert failure.message.endswith("the real error")
    assert len(failure.message) < 800  # a tail, not the whole log


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [POLICY.backoff(n) for n in (1, 2, 3, 6, 10)] == [30, 60, 120, 600, 600]
