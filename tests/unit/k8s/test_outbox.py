"""The Events' outbox: a caller never waits, one object's order is kept, several objects'
Events go out side by side, a full queue drops."""

from __future__ import annotations

import threading

import pytest
from pitstop import telemetry
from pitstop.k8s import errors
from pitstop.k8s.outbox import Letter, Outbox

DEADLINE = 10.0


def dropped() -> float:
    return telemetry.EVENTS_DROPPED._value.get()  # prometheus-client's own reading


def test_one_objects_letters_are_posted_in_the_order_they_were_queued() -> None:
    outbox, posted = Outbox(), []
    for i in range(200):
        about = f"ml/m{i % 7}"
        outbox.put(Letter(lambda i=i, about=about: posted.append((about, i)), "a letter", about))
    assert outbox.flush(DEADLINE)
    assert sorted(posted) == sorted((f"ml/m{i % 7}", i) for i in range(200))
    for name in {about for about, _ in posted}:
        mine = [i for about, i in posted if about == name]
        assert mine == sorted(mine), name
    assert outbox.waiting() == 0
    outbox.stop()


def test_letters_about_different_objects_are_posted_side_by_side() -> None:
    outbox = Outbox(senders=4)
    # Two objects that two different senders serve:
    first = "ml/a"
    second = next(
        f"ml/b{i}" for i in range(100) if outbox._sender(f"ml/b{i}") != outbox._sender(first)
    )
    both = threading.Barrier(2, timeout=DEADLINE)  # opens only when both post at once
    met: list[bool] = []
    for about in (first, second):
        outbox.put(Letter(lambda: met.append(both.wait() >= 0), "a slow letter", about))
    assert outbox.flush(DEADLINE)
    assert met == [True, True]
    outbox.stop()


def test_a_caller_never_waits_for_a_slow_api_and_a_full_queue_drops() -> None:
    outbox, release, started = Outbox(senders=1, capacity=2), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(DEADLINE)

    outbox.put(Letter(slow, "stuck on the API"))
    assert started.wait(DEADLINE)  # the thread holds it: the queue is empty again
    before, posted = dropped(), []
    for i in range(5):  # returns at once although nothing can be posted
        outbox.put(Letter(lambda i=i: posted.append(i), f"letter {i}"))
    assert dropped() == before + 3  # two fit; the rest were dropped, not waited for
    assert outbox.waiting() == 3  # the one being posted and the two queued
    release.set()
    outbox.stop(grace=DEADLINE)
    assert posted == [0, 1]


def test_a_letter_that_fails_costs_only_itself() -> None:
    outbox, posted = Outbox(), []

    def refused() -> None:
        raise RuntimeError("the API server said no")

    def not_leading() -> None:
        raise errors.NotLeader("another replica leads")

    for post in (refused, not_leading, lambda: posted.append("after")):
        outbox.put(Letter(post, "a letter"))
    assert outbox.flush(DEADLINE)
    assert posted == ["after"]
    outbox.stop()


def test_stop_posts_what_is_queued_and_then_drops() -> None:
    outbox, posted = Outbox(), []
    for i in range(3):
        outbox.put(Letter(lambda i=i: posted.append(i), f"letter {i}"))
    outbox.stop(grace=DEADLINE)
    assert posted == [0, 1, 2]
    before = dropped()
    outbox.put(Letter(lambda: posted.append(3), "too late"))
    assert dropped() == before + 1
    assert posted == [0, 1, 2]


def test_an_outbox_never_used_stops_at_once() -> None:
    outbox = Outbox()
    outbox.stop()
    assert not outbox.flush(0.05)  # stopped: nothing is posted any more


def test_an_outbox_needs_a_sender() -> None:
    with pytest.raises(ValueError, match="sender"):
        Outbox(senders=0)
