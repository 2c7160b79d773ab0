"""The Kopf handlers hear the objects Pitstop makes: each watch's label filter matches
what `rendering` renders, and the event kicks the ModelDeployment it concerns."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from pitstop import handlers
from pitstop.api.resource import ModelDeployment
from pitstop.rendering import build_job

SETTINGS = build_job.BuildSettings(operator_image="pitstop/operator:0.1.0")


class Queue:
    def __init__(self) -> None:
        self.kicked: list[tuple[str, str]] = []

    def kick(self, key: tuple[str, str]) -> None:
        self.kicked.append(key)


def watching(group: str, plural: str) -> list[Any]:
    """The event handlers Kopf registered for one resource."""
    registry = kopf.get_default_registry()
    assert handlers.build_changed  # registered on import
    found = [handler for handler in registry._watching.get_all_handlers()
             if handler.selector is not None and handler.selector.group == group
             and (handler.selector.plural or handler.selector.any_name) == plural]  # fmt: skip
    assert found, f"no handler watches {group}/{plural}"
    return found


def matches(pattern: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kopf's label filter: a value, or PRESENT / ABSENT."""
    for key, value in (pattern or {}).items():
        if value is kopf.PRESENT:
            if key not in labels:
                return False
        elif value is kopf.ABSENT:
            if key in labels:
                return False
        elif labels.get(key) != value:
            return False
    return True


def build_requested_by(namespace: str, name: str) -> dict[str, Any]:
    md = ModelDeployment.model_validate({
        "metadata": {"name": name, "namespace": namespace, "uid": "u-1"},
        "spec": {"model": {"name": "fraud", "version": "7",
                           "source": {"uri": "https://h/fraud.bentomodel"}},
                 "build": {"registry": "registry.example.com/ml"}},
    })  # fmt: skip
    return build_job.job(md, build_job.build_key(md, SETTINGS), 1, SETTINGS)


def test_a_build_job_moving_kicks_the_model_deployment_that_started_it() -> None:
    # The Job lives in the build namespace, without the requester's name in its labels
    # (a build serves every requester of its key): only its annotation names who asked.
    job = build_requested_by("ml", "fraud")
    assert job["metadata"]["namespace"] != "ml"
    heard = [h for h in watching("batch", "jobs")
             if matches(h.labels, job["metadata"]["labels"])]  # fmt: skip
    assert heard, "no handler hears a build Job"
    queue = Queue()
    for handler in heard:
        body = kopf.Body(job)
        asyncio.run(handler.fn(body=body, namespace=job["metadata"]["namespace"],
                               memo=kopf.Memo(queue=queue)))  # fmt: skip
    assert queue.kicked == [("ml", "fraud")]


def test_a_job_nobody_requested_kicks_nothing() -> None:
    job = build_requested_by("ml", "fraud")
    del job["metadata"]["annotations"][build_job.REQUESTED_BY]
    queue = Queue()
    for handler in watching("batch", "jobs"):
        asyncio.run(handler.fn(body=kopf.Body(job), namespace=job["metadata"]["namespace"],
                               memo=kopf.Memo(queue=queue)))  # fmt: skip
    assert queue.kicked == []


def test_no_change_handler_is_registered_so_kopf_needs_no_diff_base() -> None:
    """`NoDiffBase` gives Kopf empty essences to diff: right only while no handler asks
    what changed (on.create/update/resume/delete, daemons, timers)."""
    registry = kopf.get_default_registry()
    assert handlers.held
    assert handlers.model_deployment_changed
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []
    assert list(registry._watching.get_all_handlers())  # the level-based kicks
    body = kopf.Body({"metadata": {"name": "fraud", "labels": {"a": "b"}}, "spec": {"x": 1}})
    none = handlers.NoDiffBase()
    assert none.build(body=body) == {}
    assert none.fetch(body=body) is None


def test_the_operator_uses_the_empty_diff_base() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, handlers.Options())
    assert isinstance(settings.persistence.diffbase_storage, handlers.NoDiffBase)


def test_each_watch_asks_the_api_server_for_what_its_handlers_hear_and_no_more() -> None:
    """The label selector on a kind's watch stream is exactly its handlers' label filter:
    narrower, and a handler would never hear of objects it wants; missing, and the
    operator would watch every tenant's objects of that kind."""
    settings = kopf.OperatorSettings()
    handlers.configure(settings, handlers.Options())
    registry = kopf.get_default_registry()
    assert handlers.held
    every = [*registry._watching.get_all_handlers(), *registry._indexing.get_all_handlers()]
    for handler in every:
        assert handler.selector is not None
        group, version = handler.selector.group or "", handler.selector.version or "v1"
        plural = handler.selector.plural or handler.selector.any_name or ""
        asked = list(settings.watching.label_selectors.collect(
            kopf.Resource(group, version, plural)))  # fmt: skip
        if handler.labels:
            assert asked == [handlers.selector(handler.labels)], f"{group}/{plural}"
        else:
            assert asked == [], f"{group}/{plural} is watched whole: no selector"
    assert handlers.selector(handlers.FILTERED["", "v1", "services"]) == (
        "app.kubernetes.io/managed-by=pitstop,pitstop.dev/model-deployment"
    )
