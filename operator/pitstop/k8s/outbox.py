"""Events leave the reconcile's path: a reconcile queues them, sender threads post them.

An Event is for people reading `kubectl describe`; no decision waits for it. Posted in
line, each cost a reconcile one more API round trip — two or three per pass that
changed something, on an API server that is busiest exactly when many passes change
something at once (a fleet created or rolled out together). client-go's recorder posts
from a background broadcaster for the same reason, and, as it does, drops rather than
waits when its queue is full (`pitstop_events_dropped_total` counts them): a reconcile
never blocks on an Event.

A few sender threads post side by side (as many as reconciles once did in line: one
thread fell behind a fleet rolling out at once); all of one object's Events go through
the same one, so they keep the order in which they were said. The writes still pass
the leader election's fence (`transport`): a replica that lost the lead posts nothing
more, whatever it had queued. `stop` lets the queues drain for a short grace first, so
an operator that stops says what it decided last.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from pitstop import telemetry
from pitstop.k8s import errors

log = logging.getLogger(__name__)

SENDERS = 4
CAPACITY = 4000  # Events waiting, all senders together (client-go's broadcaster: 1000)


@dataclass(frozen=True)
class Letter:
    post: Callable[[], None]
    """The write itself (counting on an identical Event, or creating one)."""
    what: str
    """For the log, when it cannot be posted."""
    about: str = ""
    """The object it is about: one object's letters are posted in order."""


_CONTROL = "\0"  # flush and stop marks: not letters anyone waits on
_STOP = Letter(lambda: None, "stop", _CONTROL)


class Outbox:
    def __init__(self, senders: int = SENDERS, capacity: int = CAPACITY) -> None:
        if senders < 1 or capacity < senders:
            raise ValueError("an outbox needs a sender, and room for a letter per sender")
        self._queues: list[queue.Queue[Letter]] = [
            queue.Queue(capacity // senders) for _ in range(senders)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(q,), name=f"events-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        self._lock = threading.Lock()
        self._started = self._stopped = False
        self._waiting = 0

    @property
    def senders(self) -> int:
        """Threads that post: each may be in an API call at any time."""
        return len(self._threads)

    def waiting(self) -> int:
        """Letters queued or being posted."""
        return self._waiting

    def put(self, letter: Letter) -> None:
        """Queue `letter`; never waits. Dropped (and counted) when its queue is full or
        the outbox has stopped."""
        if not self._start():
            telemetry.EVENTS_DROPPED.inc()
            return
        with self._lock:
            self._waiting += 1
        try:
            self._queues[self._sender(letter.about)].put_nowait(letter)
        except queue.Full:
            self._done()
            telemetry.EVENTS_DROPPED.inc()
            log.warning("event queue full; dropped: %s", letter.what)

    def _done(self) -> None:
        with self._lock:
            self._waiting -= 1

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is posted; False if `timeout` passed (or
        the outbox has stopped)."""
        if not self._start():
            return False
        deadline, marks = time.monotonic() + timeout, []
        for letters in self._queues:
            mark = threading.Event()
            try:
                letters.put(Letter(mark.set, "flush", _CONTROL), timeout=_left(deadline))
            except queue.Full:
                return False
            marks.append(mark)
        return all(mark.wait(_left(deadline)) for mark in marks)

    def _start(self) -> bool:
        """Start the senders, once; False when the outbox has stopped."""
        with self._lock:
            if not self._started and not self._stopped:
                self._started = True
                for thread in self._threads:
                    thread.start()
            return not self._stopped

    def _sender(self, about: str) -> int:
        return zlib.crc32(about.encode()) % len(self._queues)  # stable, unlike hash()

    def stop(self, grace: float = 2.0) -> None:
        """Post what is queued within `grace` seconds, then stop; later letters drop."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            running = self._started
        if not running:
            return
        deadline = time.monotonic() + grace
        for letters in self._queues:
            with contextlib.suppress(queue.Full):
                letters.put(_STOP, timeout=_left(deadline))
        for thread in self._threads:
            thread.join(_left(deadline))

    def _run(self, letters: queue.Queue[Letter]) -> None:
        while True:
            letter = letters.get()
            if letter is _STOP:
                return
            try:
                letter.post()
            except errors.NotLeader:
                pass  # another replica leads: it says what happens from here on
            except Exception as error:  # an Event is never worth more than a log line
                log.warning("could not post %s: %s", letter.what, errors.describe(error))
            finally:
                if letter.about != _CONTROL:
                    self._done()


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
