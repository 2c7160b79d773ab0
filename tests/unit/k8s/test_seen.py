"""When an apply may be skipped: only when nobody wrote the child since Pitstop's own
write of the same object."""

from __future__ import annotations

from typing import Any

from pitstop.k8s.seen import Applied, Seen


def obj(
    kind: str, spec: dict[str, Any], rv: str = "", generation: int | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ml", "name": "fraud", "resourceVersion": rv}
    if generation is not None:
        meta["generation"] = generation
    version = "apps/v1" if kind == "Deployment" else "v1"
    return {"apiVersion": version, "kind": kind, "metadata": meta, "spec": spec}


def test_a_service_is_skipped_while_the_watch_shows_our_own_write() -> None:
    applied, seen = Applied(), Seen()
    desired = obj("Service", {"port": 80})
    assert not applied.unchanged(desired, seen)  # never applied
    applied.wrote(desired, obj("Service", {"port": 80}, rv="7"))
    assert not applied.unchanged(desired, seen)  # the watch has not shown it yet
    seen.record(obj("Service", {}, rv="7"))
    assert applied.unchanged(desired, seen)
    assert not applied.unchanged(obj("Service", {"port": 81}), seen)  # another desire
    seen.record(obj("Service", {}, rv="9"))  # someone else wrote it
    assert not applied.unchanged(desired, seen)
    seen.forget(obj("Service", {}))  # deleted
    assert not applied.unchanged(desired, seen)


def test_a_deployment_counts_spec_changes_not_status_updates() -> None:
    applied, seen = Applied(), Seen()
    desired = obj("Deployment", {"replicas": 2})
    applied.wrote(desired, obj("Deployment", {}, rv="10", generation=3))
    seen.record(obj("Deployment", {}, rv="14", generation=3))  # the controller's status
    assert applied.unchanged(desired, seen)
    seen.record(obj("Deployment", {}, rv="15", generation=4))  # someone's spec edit
    assert not applied.unchanged(desired, seen)


def test_a_deleted_child_is_applied_again() -> None:
    applied, seen = Applied(), Seen()
    desired = obj("Service", {"port": 80})
    applied.wrote(desired, obj("Service", {}, rv="7"))
    seen.record(obj("Service", {}, rv="7"))
    applied.drop(("v1", "Service", "ml", "fraud"))
    assert not applied.unchanged(desired, seen)
