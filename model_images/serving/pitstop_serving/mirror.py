"""Shadow mirroring: copy a share of requests to another model and compare answers.

The operator mounts a small JSON file (from a ConfigMap) such as
`{"url": "http://fraud-d4e5f6:3000/predict", "percent": 25}`; it is re-read when its
mtime changes (checked at most once a second). Absent file, or percent 0, means off.

Every copy costs the primary CPU that its own clients would otherwise get, so the
path is kept as short as Python allows (measured: see model_images/README.md):
- a copy is queued only after the client has its full answer: the request body
  bytes as received plus a few header lines, no re-encoding, no task per copy;
- copies are written in batches (up to `BATCH`, or whatever is queued after
  `LINGER` seconds) as pipelined HTTP/1.1 requests over one kept-alive connection,
  one `write` per batch, and the answers are parsed in the protocol's
  `data_received` callback, in order; a general client (httpx) costs more CPU per
  request than the whole prediction on a cheap model;
- at most `QUEUE_SIZE` copies, and `QUEUE_BYTES` of them (requests not yet taken by
  the socket, and our answers awaiting the shadow's), are queued or unanswered; beyond
  that, copies are dropped and counted (`pitstop_shadow_dropped_total`), never
  buffered without limit — a few large requests to a slow shadow cannot fill memory.
- answers are read at most every `LINGER` seconds (reading pauses in between), so
  one wake-up reads many answers instead of one each;
- an answer is first compared byte for byte with ours (a healthy shadow of the same
  template answers the same bytes); only when they differ are both parsed and their
  predictions compared within the tolerance. Outcomes are counted once per read.
Sampling is deterministic (every 100/percent-th request), so 100 % mirrors every
request and 10 % exactly one in ten. The shadow latency of a copy is the time the
shadow itself reports spending on it (`Server-Timing: app;dur=`, which the template
sends); for a shadow that does not report it, the time from when the shadow could
start on it (its send time, or the previous answer read, whichever is later) to
when the answer was read, which includes up to `LINGER` of reading delay.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from pitstop_serving import metrics as metrics_

RECHECK_SECONDS = 1.0
QUEUE_SIZE = 1024
QUEUE_BYTES = 16 << 20
BATCH = 64
LINGER = 0.02
RETRY_SECONDS = 0.5
TIMING = b"\r\nserver-timing: app;dur="  # the shadow's own time, in ms
log = logging.getLogger("pitstop.mirror")

# Told each shadow answer (200) with the copy's request id: None when it was byte for
# byte ours, else its `predictions` as parsed. `feedback` keeps them for the outcomes.
Answered = Callable[[bytes, Any], None]


@dataclass(frozen=True)
class Settings:
    url: str
    host: str
    port: int
    path: str
    percent: float
    timeout: float = 2.0
    tolerance: float = 1e-6


def parse(raw: bytes) -> Settings | None:
    """Settings from the mirror file's content; None when mirroring is off."""
    data = json.loads(raw or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the mirror configuration must be a JSON object")
    percent = float(data.get("percent", 0) or 0)
    url = str(data.get("url", "") or "")
    if percent <= 0 or not url:
        return None
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be within 0-100, not {percent}")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"the mirror url must be http://host[:port]/path, not {url!r}")
    return Settings(
        url=url,
        host=parts.hostname,
        port=parts.port or 80,
        path=parts.path or "/predict",
        percent=percent,
        timeout=float(data.get("timeoutSeconds", 2.0)),
        tolerance=float(data.get("tolerance", 1e-6)),
    )


def agree(ours: list[Any], theirs: Any, tolerance: float) -> bool:
    if not isinstance(theirs, list) or len(theirs) != len(ours):
        return False
    for a, b in zip(ours, theirs, strict=True):
        if isinstance(a, float) and isinstance(b, int | float) and not isinstance(b, bool):
            if not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance):
                return False
        elif a != b or type(a) is not type(b):
            return False
    return True


def predictions(theirs: bytes) -> Any:
    """The `predictions` of an answer body; raises ValueError if it has none."""
    try:
        return json.loads(theirs)["predictions"]
    except (KeyError, TypeError) as error:
        raise ValueError("no predictions") from error


def compare(ours: bytes, theirs: bytes, tolerance: float) -> bool | None:
    """Whether two answer bodies carry the same predictions; None if theirs is unreadable."""
    try:
        found = predictions(theirs)
    except ValueError:
        return None
    return agree(json.loads(ours)["predictions"], found, tolerance)


class Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection to the shadow, requests pipelined.

    Answers come back in request order; each is matched with the oldest unanswered
    copy, compared and counted as it is parsed. A lost connection or a timeout counts
    every unanswered copy as a shadow error.
    """

    def __init__(
        self, settings: Settings, metrics: metrics_.Metrics, answered: Answered | None = None
    ) -> None:
        self.settings = settings
        self.answered = answered
        self.transport: asyncio.Transport | None = None
        self.closed = False
        # (our answer body, send time, request id) of copies sent and not yet answered,
        # in order.
        self.pending: collections.deque[tuple[bytes, float, bytes]] = collections.deque()
        self.pending_bytes = 0  # of our answers in `pending`
        self._buffer = b""
        self._last_answer = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._latency = metrics.shadow_latency
        self._agree = metrics.shadow.labels("agree")
        self._disagree = metrics.shadow.labels("disagree")
        self.errors = metrics.shadow.labels("error")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.pending:
            self.errors.inc(len(self.pending))
            self.forget()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def forget(self) -> None:
        """Drop every unanswered copy (counted, or not, by the caller)."""
        self.pending.clear()
        self.pending_bytes = 0

    def held(self) -> int:
        """Bytes this connection holds for copies: unanswered answers of ours, and
        requests the socket has not taken yet."""
        buffered = self.transport.get_write_buffer_size() if self.transport is not None else 0
        return self.pending_bytes + buffered

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def send(self, data: bytes, copies: list[tuple[bytes, bytes]]) -> None:
        """`copies`: (our answer body, request id) of each request in `data`."""
        assert self.transport is not None
        now = time.perf_counter()
        self.transport.write(data)
        pending = self.pending
        for ours, request_id in copies:
            pending.append((ours, now, request_id))
            self.pending_bytes += len(ours)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(
                self.settings.timeout, self._check_timeout
            )

    def _check_timeout(self) -> None:
        self._watchdog = None
        if not self.pending:
            return
        overdue = self.pending[0][1] + self.settings.timeout - time.perf_counter()
        if overdue <= 0:
            log.debug("shadow answer overdue; closing the connection")
            self.close()
            return
        self._watchdog = asyncio.get_running_loop().call_later(overdue, self._check_timeout)

    def data_received(self, data: bytes) -> None:
        # One pass over everything read: each complete answer is matched with the
        # oldest unanswered copy, compared and counted; a partial one waits in
        # `_buffer`. Offsets, not re-slicing, walk the buffer.
        buffer = self._buffer + data if self._buffer else data
        size = len(buffer)
        pending = self.pending
        tolerance = self.settings.tolerance
        observe = self._latency.observe
        tell = self.answered
        first_sent = pending[0][1] if pending else 0.0
        at = 0
        untimed = agreed = disagreed = errors = 0
        close = False
        while True:
            end = buffer.find(b"\r\n\r\n", at)
            if end < 0:
                break
            head = buffer[at:end].lower()
            field = head.find(b"\r\ncontent-length:")
            status = head[9:12]
            if field < 0 or not status.isdigit():
                # Not an answer this reader understands (e.g. chunked): start over.
                log.debug("unreadable shadow answer head: %r", head[:200])
                close = True
                break
            stop = head.find(b"\r\n", field + 17)
            body = end + 4
            length = int(head[field + 17 : stop if stop >= 0 else len(head)])
            if size < body + length:
                break
            if not pending:
                log.debug("shadow answered more than it was asked")
                close = True
                break
            ours, _, request_id = pending.popleft()
            self.pending_bytes -= len(ours)
            timing = head.find(TIMING)
            if timing >= 0:
                stop = head.find(b"\r\n", timing + len(TIMING))
                try:
                    observe(float(head[timing + len(TIMING) : stop if stop >= 0 else None]) / 1000)
                except ValueError:
                    untimed += 1
            else:
                untimed += 1
            at = body + length
            if status != b"200":
                errors += 1
            elif buffer[body:at] == ours:
                # A healthy shadow of the same template answers the same bytes.
                agreed += 1
                if tell is not None:
                    tell(request_id, None)
            else:
                try:
                    theirs = predictions(buffer[body:at])
                except ValueError:
                    errors += 1
                else:
                    if agree(json.loads(ours)["predictions"], theirs, tolerance):
                        agreed += 1
                    else:
                        disagreed += 1
                    if tell is not None:
                        tell(request_id, theirs)
            if b"\r\nconnection: close" in head:
                close = True
                break
        self._buffer = buffer[at:] if at else buffer
        self._agree.value += agreed
        self._disagree.value += disagreed
        self.errors.value += errors
        answered = agreed + disagreed + errors
        if answered:
            now = time.perf_counter()
            if untimed:
                # Without the shadow's own figure: the time since it could start on
                # these answers (its send time or the last read), shared among them.
                share = (now - max(first_sent, self._last_answer)) / answered
                for _ in range(untimed):
                    observe(share)
            self._last_answer = now
        if close:
            self.close()
        elif pending and self.transport is not None and not self.transport.is_closing():
            # Let the next answers gather in the socket: one wake-up then reads them all.
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(LINGER, self._resume_reading)

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class Mirror:
    def __init__(
        self, path: Path, metrics: metrics_.Metrics, answered: Answered | None = None
    ) -> None:
        self.path = path
        self.metrics = metrics
        self.answered = answered
        self.settings: Settings | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked_at = float("-inf")
        self._credit = 0.0
        self._prefix = b""
        self._out: list[bytes] = []
        self._copies: list[tuple[bytes, bytes]] = []  # (our answer, request id)
        self._out_bytes = 0  # of `_out` and `_copies`
        self._timer: asyncio.TimerHandle | None = None
        self._connection: Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._retry_at = 0.0

    def refresh(self, now: float) -> None:
        if now - self._checked_at < RECHECK_SECONDS:
            return
        self._checked_at = now
        try:
            stat = os.stat(self.path)
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            settings = parse(self.path.read_bytes()) if stamp is not None else None
        except (OSError, ValueError) as error:
            log.error("mirroring off: %s is invalid: %s", self.path, error)
            settings = None
        if settings != self.settings:
            log.info("mirror settings now %s", settings)
            self._restart(settings)
        self.settings = settings

    def _restart(self, settings: Settings | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._connection is not None:
            self._connection.forget()  # in flight under the old settings: not counted
            self._connection.close()
            self._connection = None
        self._out, self._copies, self._out_bytes = [], [], 0
        self._retry_at = 0.0
        if settings is not None:
            self._prefix = (
                f"POST {settings.path} HTTP/1.1\r\nHost: {settings.host}:{settings.port}\r\n"
                "Content-Type: application/json\r\nContent-Length: "
            ).encode()

    def sampled(self) -> bool:
        settings = self.settings
        if settings is None:
            return False
        self._credit += settings.percent
        if self._credit >= 100.0:
            self._credit -= 100.0
            return True
        return False

    def submit(self, body: bytes, headers: bytes, ours: bytes, request_id: bytes = b"") -> None:
        """Queue a copy (call only after the client's answer is sent).

        `headers` are extra header lines, each ending in CRLF; `ours` is the body of
        our own answer, which the shadow's is compared with; `request_id` is passed
        to `answered` with the shadow's answer."""
        connection = self._connection
        queued = len(self._copies) + (len(connection.pending) if connection else 0)
        held = self._out_bytes + (connection.held() if connection else 0)
        if queued >= QUEUE_SIZE or held + len(body) + len(ours) > QUEUE_BYTES:
            self.metrics.shadow_dropped.inc()
            return
        if connection is None and self._connecting is None and time.monotonic() < self._retry_at:
            # The shadow refused the last connection: fail fast until the retry time.
            self.metrics.shadow.labels("error").value += 1
            return
        request = b"%s%d\r\n%s\r\n%s" % (self._prefix, len(body), headers, body)
        self._out.append(request)
        self._copies.append((ours, request_id))
        self._out_bytes += len(request) + len(ours)
        if len(self._copies) >= BATCH:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LINGER, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._copies:
            return
        connection = self._connection
        if connection is None or connection.closed:
            self._connection = None
            if self._connecting is None and self.settings is not None:
                self._connecting = asyncio.create_task(self._connect(self.settings))
            return
        connection.send(b"".join(self._out), self._copies)
        self._out, self._copies, self._out_bytes = [], [], 0

    async def _connect(self, settings: Settings) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.timeout):
                _, protocol = await loop.create_connection(
                    lambda: Connection(settings, self.metrics, self.answered),
                    settings.host,
                    settings.port,
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("cannot connect to the shadow: %r", error)
            self.metrics.shadow.labels("error").inc(len(self._copies))
            self._out, self._copies, self._out_bytes = [], [], 0
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        finally:
            self._connecting = None
        self._connection = protocol
        self._flush()
