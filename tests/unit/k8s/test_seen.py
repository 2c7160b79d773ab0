"""When an apply may be skipped: only when nobody wrote the child since Pitstop's own
write of the same object."""

from __future__ import annotations

from typing import Any

from pitstop.api import resource
from pitstop.k8s.seen import Applied, Seen, Version, parse_selector, watched
from pitstop.rendering import labels


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


def child(kind: str, name: str, owner: str, rv: str, **extra: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "namespace": "ml",
        "name": name,
        "resourceVersion": rv,
        "labels": {labels.MANAGED_BY: "pitstop", labels.DEPLOYMENT: owner, **extra},
        "managedFields": [{"manager": "pitstop"}],
    }
    version = "apps/v1" if kind == "Deployment" else "v1"
    return {"apiVersion": version, "kind": kind, "metadata": meta, "spec": {}}


def test_a_write_answer_held_is_not_replaced_by_an_older_watch_event() -> None:
    seen = Seen()
    seen.record(child("Deployment", "fraud-a", "fraud", rv="12"))  # our apply's answer
    seen.record(child("Deployment", "fraud-a", "fraud", rv="11"))  # the watch, behind
    held = seen.body(("apps/v1", "Deployment", "ml", "fraud-a"))
    assert held is not None
    assert held["metadata"]["resourceVersion"] == "12"
    assert "managedFields" not in held["metadata"]  # nothing reads them from here
    seen.record(child("Deployment", "fraud-a", "fraud", rv="13"))
    assert seen.get(("apps/v1", "Deployment", "ml", "fraud-a")) == Version("13", None)


def test_a_selection_is_by_owner_and_labels_and_leaves_the_held_bodies_alone() -> None:
    seen = Seen()
    seen.record(child("Deployment", "fraud-b", "fraud", rv="3", **{labels.REVISION: "b"}))
    seen.record(child("Deployment", "fraud-a", "fraud", rv="2", **{labels.REVISION: "a"}))
    seen.record(child("Deployment", "churn-a", "churn", rv="4"))
    seen.record(child("Service", "fraud", "fraud", rv="5"))
    selector = parse_selector(labels.owner_selector("fraud"))
    assert selector is not None
    found = seen.select("apps/v1", "Deployment", "ml", selector)
    assert [d["metadata"]["name"] for d in found] == ["fraud-a", "fraud-b"]
    found[0]["spec"]["replicas"] = 0  # the caller's copy
    assert "replicas" not in (seen.body(("apps/v1", "Deployment", "ml", "fraud-a")) or {})["spec"]
    only_b = seen.select("apps/v1", "Deployment", "ml", {**selector, labels.REVISION: "b"})
    assert [d["metadata"]["name"] for d in only_b] == ["fraud-b"]
    seen.forget(child("Deployment", "fraud-b", "fraud", rv=""))
    assert [
        d["metadata"]["name"] for d in seen.select("apps/v1", "Deployment", "ml", selector)
    ] == ["fraud-a"]
    relabelled = child("Deployment", "fraud-a", "churn", rv="9")  # moved to another owner
    seen.record(relabelled)
    assert seen.select("apps/v1", "Deployment", "ml", selector) == []


def test_only_equality_selectors_are_served_from_memory() -> None:
    assert parse_selector("a=b,c=d") == {"a": "b", "c": "d"}
    assert parse_selector("a==b") is None
    assert parse_selector("a!=b") is None
    assert parse_selector("a in (b)") is None
    assert parse_selector("a") is None


def test_only_what_the_watches_cover_is_held_from_a_write() -> None:
    assert watched(child("Service", "fraud", "fraud", rv="1"))
    md = {"apiVersion": resource.API_VERSION, "kind": resource.KIND, "metadata": {"name": "x"}}
    assert watched(md)
    unlabelled = child("ConfigMap", "fraud-mirror", "fraud", rv="1")
    del unlabelled["metadata"]["labels"][labels.DEPLOYMENT]
    assert not watched(unlabelled)
    route = child("Service", "r", "fraud", rv="1") | {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
    }
    assert not watched(route)  # no watch would keep it current
