"""What to do about a build, from what the API holds about it: a pure function.

`decide` sees a `Build`: the record of a finished build (if any), every attempt's Job
for the build key (in the build namespace, whoever started it) and the requester's
inputs that do not exist; it answers with the ImageBuilt condition, the attempt to start
or to launch (if any), the record to write and the failures to announce. It does no I/O
and takes the clock as a parameter, so the whole policy is a table of cases in
tests/unit/images/.

Policy: a build is tried at most `max_attempts` times, one Job per attempt. Attempt n+1
starts `backoff * 2**(n-1)` seconds (capped) after attempt n failed. When the attempts
are used up, ImageBuilt is False with the last failure's reason and log tail; a new
round starts only when the failed Jobs expire (their ttlSecondsAfterFinished) or the
spec changes the build key — both expressible in Git, no imperative step needed.

Inputs: an attempt runs with copies of the requester's Secrets (registry push, model
source credentials), taken into the build namespace; its Job is created suspended and
launched (resumed) once they exist. A Secret that does not exist, or a `pvc` source's
claim missing from the build namespace, holds the build as BuildInputMissing, naming
it, until it appears. A builder the installation does not enable (`build.builders`)
is refused up front as BuildUnavailable: the build namespace's Pod Security level
would refuse its pods, and the build would only time out.
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
BUILD_INPUT_MISSING = "BuildInputMissing"
BUILD_UNAVAILABLE = "BuildUnavailable"
BUILDERS = frozenset({"buildkit", "kaniko"})

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
    builders: frozenset[str] = BUILDERS
    """The builders this installation admits (chart value build.builders)."""

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
    state: Literal["Pending", "Running", "Succeeded", "Failed"]
    """Pending: created suspended, its Secret copies not all made yet."""
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
    missing: tuple[str, ...] = ()
    """A Pending attempt's Secrets (to copy) that do not exist."""


@dataclass(frozen=True)
class Build:
    """What the API holds about one build key, as one requester sees it."""

    image: str
    """The reference the build pushes (its tag is the build key)."""
    builder: str
    record: Record | None = None
    attempts: tuple[Attempt, ...] = ()
    missing: tuple[str, ...] = ()
    """The requester's inputs that do not exist ("Secret ml/regcred", ...)."""


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
    launch: str | None = None
    """The Job of a Pending attempt to give its Secret copies and resume."""
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
        text += ": " + _shortened(detail)
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


def _waiting(build: Build, missing: tuple[str, ...], policy: Policy, prefix: str = "") -> Outcome:
    message = f"{prefix}waiting for {', '.join(missing)} before building {build.image}"
    return Outcome(None, "False", BUILD_INPUT_MISSING, message, policy.poll_seconds)


def decide(build: Build, policy: Policy, now: datetime) -> BuildDecision:
    """The next step for the build whose image will be `build.image`."""
    if build.record is not None:
        return _built(build.record, new=False)
    ordered = sorted(build.attempts, key=lambda a: a.number)
    for attempt in ordered:
        if attempt.state == "Succeeded":
            return _built(Record(build.image, attempt.digest, attempt.package_digest), new=True)
    if build.builder not in policy.builders:
        enabled = ", ".join(sorted(policy.builders)) or "none"
        message = (
            f"builder {build.builder} is not enabled in this installation (enabled: "
            f"{enabled}; chart value build.builders sets them and the build namespace's "
            "Pod Security level)"
        )
        return BuildDecision(Outcome(None, "False", BUILD_UNAVAILABLE, message))

    failed = [a for a in ordered if a.state == "Failed"]
    announce = tuple(
        Failure(a.job, failure_reason(a), _describe(a, policy)) for a in failed if not a.reported
    )
    pending = [a for a in ordered if a.state == "Pending"]
    if pending:
        current = pending[-1]
        what = f"attempt {current.number}/{policy.max_attempts} (job {current.job}) is "
        if current.missing:
            outcome = _waiting(build, current.missing, policy, what)
            return BuildDecision(outcome, announce=announce)
        message = f"{what}starting: copying its Secrets into the build namespace"
        return BuildDecision(
            Outcome(None, "False", BUILDING, message, policy.poll_seconds),
            launch=current.job,
            announce=announce,
        )
    running = [a for a in ordered if a.state == "Running"]
    if running:
        current = running[-1]
        message = f"building image {build.image} (attempt {current.number}/{policy.max_attempts}, job {current.job})"
        if failed:
            message += "; previous " + _describe(failed[-1], policy)
        return BuildDecision(
            Outcome(None, "False", BUILDING, message, policy.poll_seconds), announce=announce
        )
    if not failed:
        if build.missing:
            return BuildDecision(_waiting(build, build.missing, policy))
        return BuildDecision(
            Outcome(
                None,
                "False",
                BUILDING,
                f"starting the build of {build.image} (attempt 1/{policy.max_attempts})",
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
        if build.missing:
            outcome = _waiting(build, build.missing, policy, f"{_describe(last, policy)}; ")
            return BuildDecision(outcome, announce=announce)
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


def _shortened(detail: str) -> str:
    """At most DETAIL_CHARS: most of its start (the failing command's own error lines
    come first) and its end (the builder's summary), the middle elided."""
    if len(detail) <= DETAIL_CHARS:
        return detail
    head = DETAIL_CHARS * 5 // 8
    return detail[:head] + " … " + detail[-(DETAIL_CHARS - head) :]
