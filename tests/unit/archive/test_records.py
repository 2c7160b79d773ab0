from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pitstop.api.status import (
    AnalysisStatus,
    HistoryEntry,
    MetricResult,
    ModelDeploymentStatus,
)
from pitstop.archive import records
from pitstop.archive.records import Record

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def entry(
    revision: str, start: int, end: int | None = None, outcome: str | None = None
) -> HistoryEntry:
    return HistoryEntry(
        revision=revision, version=revision, image=f"reg/m:{revision}@sha256:{revision * 4}",
        started_at=T0 + timedelta(minutes=start),
        ended_at=None if end is None else T0 + timedelta(minutes=end), outcome=outcome,  # type: ignore[arg-type]
    )  # fmt: skip


def status(*entries: HistoryEntry, analysis: AnalysisStatus | None = None) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(history=list(entries), analysis=analysis)


def test_only_entries_that_end_in_the_pass_are_archived_once() -> None:
    serving = entry("a", 0, outcome="Promoted")
    before = status(serving, entry("b", 5, 6, "RolledBack"))
    after = status(entry("a", 0, 10, "Retired"), entry("b", 5, 6, "RolledBack"),
                   entry("c", 10, outcome="Promoted"))  # fmt: skip
    assert [e.revision for e in records.newly_ended(before, after)] == ["a"]
    assert records.newly_ended(after, after) == []  # the next pass adds nothing
    assert records.newly_ended(status(), status(serving)) == []  # creation writes nothing


def test_a_record_carries_the_figures_of_the_analysis_that_judged_its_revision() -> None:
    judged = AnalysisStatus(revision="b", metrics=[MetricResult(
        name="error-rate", value=0.04, stable_value=0.01, limit="maxAboveStable 0.005",
        verdict="Fail", requests=812)])  # fmt: skip
    other = AnalysisStatus(revision="z", metrics=[MetricResult(name="x")])
    made = records.record("ns", "fraud", "fraud", entry("b", 5, 6, "RolledBack"), (other, judged))
    assert made.image_digest == "sha256:bbbb"
    assert [(f.name, f.verdict, f.value) for f in made.analysis] == [("error-rate", "Fail", 0.04)]
    assert (made.outcome, made.model_deployment, made.namespace) == ("RolledBack", "fraud", "ns")


def test_merging_replaces_the_same_record_and_stays_bounded_in_count_and_bytes() -> None:
    one = records.record("ns", "m", "m", entry("a", 0, 1, "Aborted"))
    again = one.model_copy(update={"reason": "again"})
    assert [r.reason for r in records.merged([one], [again])] == ["again"]

    many = [records.record("ns", "m", "m", entry(f"r{i}", i, i + 1, "Retired"))
            for i in range(records.LIMIT + 30)]  # fmt: skip
    kept = records.merged([], many)
    assert len(kept) == records.LIMIT
    assert kept[-1].revision == f"r{records.LIMIT + 29}"

    bulky = [r.model_copy(update={"reason": "x" * 4000}) for r in many[:100]]
    small = records.merged([], bulky)
    assert len(records.dumps(small)) <= records.MAX_BYTES
    assert small[-1].revision == bulky[-1].revision  # the oldest went first


def test_the_archive_round_trips_and_a_damaged_one_keeps_what_is_readable() -> None:
    kept = [records.record("ns", "m", "m", entry("a", 0, 1, "Retired"))]
    cm = records.config_map("ns", "m", kept)
    assert cm["metadata"]["name"] == "m-archive"
    assert "ownerReferences" not in cm["metadata"]
    assert "pitstop.dev/model-deployment" not in cm["metadata"]["labels"]  # not watched
    assert records.loads(cm["data"][records.KEY]) == (kept, None)
    damaged = cm["data"][records.KEY][:-1] + ',{"revision": 3}]'
    found, problem = records.loads(damaged)
    assert found == kept
    assert problem is not None
    assert "[1]" in problem
    assert records.loads("{")[1] is not None


def test_revisions_still_serving_are_retired_with_the_reason() -> None:
    now = T0 + timedelta(hours=1)
    ended = records.still_serving(status(entry("a", 0, 1, "Retired"), entry("b", 1,
                                         outcome="Promoted")), now, "decommissioned")  # fmt: skip
    assert [(e.revision, e.outcome, e.ended_at, e.reason) for e in ended] == [
        ("b", "Retired", now, "decommissioned")
    ]
    assert isinstance(records.record("n", "m", "m", ended[0]), Record)
