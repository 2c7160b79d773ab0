"""What to do about a build, from what the API holds about it: a pure function.

`decide` sees the record of a finished build (if any) and every attempt's Job for the
build key, and answers with the ImageBuilt condition, the attempt to start (if any), the
record to write and the failures to announce. It does no I/O and takes the clock as a
parameter, so the whole retry policy is a table of cases in tests/unit/images/.

Policy: a build is tried at most `max_attempts` times, one Job per attempt. Attempt n+1
starts `backoff * 2**(n-1)` seconds (capped) after attempt n failed. When the attempts
are used up, ImageBuilt is False with the last failure's reason and log tail; a new
round starts only when the failed Jobs expire (their ttlSecondsAfterFinished) or the
spec changes the build key — both expressible in Git, no imperative step needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pitstop.api.status import ConditionStatus

BUILT = "Built"
BUILDING = "Building"
BUILD_FAILED = "BuildFailed"
BUILD_TIMED_OUT = "BuildTimedOut"

# The Job controller's reason when activeDeadlineSeconds ran out.
DEADLINE_EXCEEDED = "DeadlineExceeded"
# How much of a builder's log a condition message or Event keeps.
DETAIL_CHARS = 600


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 3
    backoff_seconds: float = 30.0
    max_backoff_seconds: float = 600.0
    poll_seconds: float = 10.0

    def backoff(self, failures: int) -> float:
        """Wait after the `failures`-th failure (1-based) before the next attempt."""
        wait: float = self.backoff_seconds * 2.0 ** max(0, failures - 1)
        return min(wait, self.max_backoff_seconds)


@dataclass(frozen=True)
class Record:
    """A finished build: the pushed image and what is known of its digests."""

    image: str
    digest: str | None = None
    package_digest: str | None = None

    @property
    def reference(self) -> str:
        """The reference to run: pinned by digest when the builder reported one."""
        return f"{self.image}@{self.digest}" if self.digest else self.image


@dataclass(frozen=True)
class Attempt:
    """One build Job, as observed."""

    number: int
    job: str
    state: Literal["Running", "Succeeded", "Failed"]
    reason: str = ""
    """The Job's Failed condition reason (DeadlineExceeded, BackoffLimitExceeded)."""
    finished_at: datetime | None = None
    detail: str = ""
    """Log tail or termination message of the step that failed."""
    digest: str | None = None
    """The pushed image's digest, from the builder's termination message."""
    package_digest: str | None = None
    """The package digest, from the prepare step's termination message."""
    reported: bool = False
    """Whether this failure was already announced to the ModelDeployment."""


@dataclass(frozen=True)
class Outcome:
    """The ImageBuilt condition of the spec's build; mirrors images.resolve.ImageResult."""

    image: str | None
    status: ConditionStatus
    reason: str
    message: str
    requeue_after: float | None = None


@dataclass(frozen=True)
class Failure:
    """A failed attempt to announce once, as a Warning Event."""

    job: str
    reason: str
    message: str


@dataclass(frozen=True)
class BuildDecision:
    outcome: Outcome
    start_attempt: int | None = None
    record: Record | None = None
    """A record to write (a build just succeeded); None when nothing is new."""
    announce: tuple[Failure, ...] = ()


def failure_reason(attempt: Attempt) -> str:
    return BUILD_TIMED_OUT if attempt.reason == DEADLINE_EXCEEDED else BUILD_FAILED


def _describe(attempt: Attempt, policy: Policy) -> str:
    what = "timed out" if failure_reason(attempt) == BUILD_TIMED_OUT else "failed"
    text = f"build attempt {attempt.number}/{policy.max_attempts} ({attempt.job}) {what}"
    detail = attempt.detail.strip()
    if detail:
        text += ": " + (detail if len(detail) <= DETAIL_CHARS else "…" + detail[-DETAIL_CHARS:])
    elif attempt.reason:
        text += f" ({attempt.reason})"
    return text


def _built(record: Record, new: bool) -> BuildDecision:
    message = f"built image {record.image}"
    if record.digest:
        message += f" digest {record.digest}"
    if record.package_digest:
        message += f" from package {record.package_digest}"
    return BuildDecision(
        Outcome(record.reference, "True", BUILT, message), record=record if new else None
    )


def decide(
    image: str,
    record: Record | None,
    attempts: list[Attempt],
    policy: Policy,
    now: datetime,
) -> BuildDecision:
    """The next step for the build whose image will be `image`."""
    if record is not None:
        return _built(record, new=False)
    ordered = sorted(attempts, key=lambda a: a.number)
    for attempt in ordered:
        if attempt.state == "Succeeded":
            return _built(Record(image, attempt.digest, attempt.package_digest), new=True)

    failed = [a for a in ordered if a.state == "Failed"]
    announce = tuple(
        Failure(a.job, failure_reason(a), _describe(a, policy)) for a in failed if not a.reported
    )
    running = [a for a in ordered if a.state == "Running"]
    if running:
        current = running[-1]
        message = f"building image {image} (attempt {current.number}/{policy.max_attempts}, job {current.job})"
        if failed:
            message += "; previous " + _describe(failed[-1], policy)
        return BuildDecision(
            Outcome(None, "False", BUILDING, message, policy.poll_seconds), announce=announce
        )
    if not failed:
        return BuildDecision(
            Outcome(
                None,
                "False",
                BUILDING,
                f"starting the build of {image} (attempt 1/{policy.max_attempts})",
                policy.poll_seconds,
            ),
            start_attempt=1,
        )

    last = failed[-1]
    if len(failed) >= policy.max_attempts:
        message = _describe(last, policy) + "; no attempts left until the failed Jobs expire"
        return BuildDecision(
            Outcome(None, "False", failure_reason(last), message), announce=announce
        )

    due = (last.finished_at or now) + timedelta(seconds=policy.backoff(len(failed)))
    next_number = max(a.number for a in ordered) + 1
    if now >= due:
        message = (
            f"{_describe(last, policy)}; retrying as attempt {next_number}/{policy.max_attempts}"
        )
        return BuildDecision(
            Outcome(None, "False", BUILDING, message, policy.poll_seconds),
            start_attempt=next_number,
            announce=announce,
        )
    wait = (due - now).total_seconds()
    message = f"{_describe(last, policy)}; retrying in {wait:.0f}s"
    return BuildDecision(
        Outcome(None, "False", BUILDING, message, min(wait, policy.poll_seconds)),
        announce=announce,
    )
