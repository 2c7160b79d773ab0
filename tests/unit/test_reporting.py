"""What a reconcile tells the operator's metrics: pure parts, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime

from pitstop import reporting, telemetry
from pitstop.api.status import (
    AnalysisStatus,
    HistoryEntry,
    MetricResult,
    ModelDeploymentStatus,
    SmokeResult,
)
from pitstop.strategies import history

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def entry(revision: str, outcome: str | None) -> HistoryEntry:
    return HistoryEntry.model_validate(
        {"revision": revision, "version": "1", "image": "i", "startedAt": T0, "outcome": outcome}
    )


def test_a_rollout_ends_once_when_its_history_entry_gets_an_outcome() -> None:
    before = [entry("a", "Promoted"), entry("b", None)]
    after = [entry("a", "Promoted"), entry("b", "RolledBack")]
    assert [e.revision for e in history.ended(before, after)] == ["b"]
    assert history.ended(after, after) == []


def test_a_rollback_names_the_failing_metric_or_the_smoke_test() -> None:
    failing = AnalysisStatus(revision="b", metrics=[
        MetricResult(name="p99", verdict="Pass"), MetricResult(name="errors", verdict="Fail"),
    ])  # fmt: skip
    status = ModelDeploymentStatus(analysis=failing)
    assert reporting.decided_on(status, entry("b", "RolledBack")) == "errors"
    assert reporting.decided_on(status, entry("b", "Aborted")) == ""
    assert reporting.decided_on(status, entry("c", "RolledBack")) == ""  # another revision
    smoke = AnalysisStatus(revision="b", smoke=SmokeResult(revision="b", passed=False))
    decided = reporting.decided_on(ModelDeploymentStatus(analysis=smoke), entry("b", "RolledBack"))
    assert decided == "smokeTest"


def test_per_model_deployment_series_go_with_it() -> None:
    judged = telemetry.Judged("errors", "Inconclusive", 0.01, 0.02, 0.0, 0.1, 0.05, "max")
    telemetry.FLEET.saw("ns", "gone", telemetry.Seen("Progressing", {"stable": 100}, (judged,)))

    def series() -> set[tuple[str, str]]:
        return {
            (s.name, s.labels.get("name", ""))
            for family in telemetry.REGISTRY.collect()
            for s in family.samples
            if s.labels.get("name") == "gone" or s.labels.get("phase") == "Progressing"
        }

    assert ("pitstop_analysis_verdict", "gone") in series()
    assert ("pitstop_modeldeployments", "") in series()
    assert ("pitstop_traffic_percent", "gone") in series()
    assert ("pitstop_modeldeployment_phase", "gone") in series()
    reporting.forget("ns", "gone")
    assert series() == set()
