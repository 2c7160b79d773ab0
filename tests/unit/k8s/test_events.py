"""Which occurrences count on one Event: the aggregation key and the bounded cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pitstop.k8s import events

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def owner(name: str = "fraud", uid: str = "u1", resource_version: str = "1") -> dict[str, Any]:
    return {
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml", "uid": uid,
                     "resourceVersion": resource_version},
    }  # fmt: skip


def key(**changes: Any) -> events.Key:
    args: dict[str, Any] = {"component": "pitstop", "owner": owner(), "type_": "Warning",
                            "reason": "ReconcileError", "message": "boom"}  # fmt: skip
    args.update(changes)
    return events.key(args.pop("component"), args.pop("owner"), **args)


def test_the_same_occurrence_on_a_newer_version_of_the_object_is_the_same_event() -> None:
    # Every status write moves the object's resourceVersion; the Event stays one.
    assert key(owner=owner(resource_version="2")) == key()


@pytest.mark.parametrize(
    "change",
    [
        {"message": "boom again"},
        {"reason": "RolledBack"},
        {"type_": "Normal"},
        {"component": "kopf"},
        {"owner": owner(name="other")},
        {"owner": owner(uid="u2")},  # deleted and created again: another object
    ],
    ids=["message", "reason", "type", "source", "object", "uid"],
)
def test_any_other_difference_is_another_event(change: dict[str, Any]) -> None:
    assert key(**change) != key()


def test_messages_are_compared_as_the_api_server_keeps_them() -> None:
    long = "x" * (events.MESSAGE_LIMIT + 10)
    assert key(message=long).message == "x" * events.MESSAGE_LIMIT
    assert key(message=long) == key(message=long + "tail beyond the limit")


def test_the_recorder_remembers_the_event_an_occurrence_counts_on() -> None:
    recorder = events.Recorder()
    assert recorder.seen(key()) is None
    recorder.posted(key(), events.Posted("fraud.abc", 1, NOW))
    assert recorder.seen(key(owner=owner(resource_version="9"))) == events.Posted(
        "fraud.abc", 1, NOW
    )
    recorder.posted(key(), events.Posted("fraud.abc", 2, NOW))
    assert recorder.seen(key()) == events.Posted("fraud.abc", 2, NOW)
    recorder.forget(key())  # expired on the server: the next one starts a new Event
    assert recorder.seen(key()) is None


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    recorder = events.Recorder(size=2)
    first, second, third = (key(message=m) for m in ("a", "b", "c"))
    recorder.posted(first, events.Posted("e1", 1, NOW))
    recorder.posted(second, events.Posted("e2", 1, NOW))
    assert recorder.seen(first) is not None  # used again: now the most recent
    recorder.posted(third, events.Posted("e3", 1, NOW))
    assert recorder.seen(second) is None
    assert recorder.seen(first) is not None
    assert recorder.seen(third) is not None
