"""Shadow mirroring: copy a share of requests to another model and compare answers.

The operator mounts a small JSON file (from a ConfigMap) such as
`{"url": "http://fraud-d4e5f6:3000/predict", "percent": 25}`; it is re-read when its
mtime changes (checked at most once a second). Absent file, or percent 0, means off.

Copies are queued only after the client has its full answer and are sent by a few
background tasks over kept-alive HTTP/1.1 connections written by hand: a general
client (httpx) costs more CPU per request than the whole prediction on a cheap
model, and that CPU would be taken from the primary's clients. The queue is
bounded: when the shadow cannot keep up, copies are dropped and counted, never
buffered without limit. Sampling is deterministic (every 100/percent-th request), so
100 % mirrors every request and 10 % exactly one in ten.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pitstop_serving import metrics as metrics_

RECHECK_SECONDS = 1.0
QUEUE_SIZE = 1024
SENDERS = 4
log = logging.getLogger("pitstop.mirror")


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


class Connection:
    """One kept-alive HTTP/1.1 connection to the shadow."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def post(self, body: bytes, headers: bytes) -> tuple[int, bytes]:
        s = self.settings
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(s.host, s.port)
        assert self._reader is not None
        head = (
            f"POST {s.path} HTTP/1.1\r\nHost: {s.host}:{s.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        self._writer.write(head + headers + b"\r\n" + body)
        status_line = await self._reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self._reader.readexactly(length)
        if close:
            self.close()
        return status, payload


class Mirror:
    def __init__(self, path: Path, metrics: metrics_.Metrics) -> None:
        self.path = path
        self.metrics = metrics
        self.settings: Settings | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked_at = float("-inf")
        self._credit = 0.0
        self._queue: asyncio.Queue[tuple[bytes, bytes, list[Any]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
            self._restart()
        self.settings = settings

    def _restart(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self._queue = None

    def sampled(self) -> bool:
        settings = self.settings
        if settings is None:
            return False
        self._credit += settings.percent
        if self._credit >= 100.0:
            self._credit -= 100.0
            return True
        return False

    def submit(self, body: bytes, headers: bytes, ours: list[Any]) -> None:
        """Queue a copy (call only after the client's answer is sent)."""
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_SIZE)
            self._tasks = [asyncio.create_task(self._send_loop()) for _ in range(SENDERS)]
        try:
            self._queue.put_nowait((body, headers, ours))
        except asyncio.QueueFull:
            self.metrics.shadow_dropped.inc()

    async def _send_loop(self) -> None:
        settings, queue = self.settings, self._queue
        assert settings is not None
        assert queue is not None
        connection = Connection(settings)
        outcomes = {
            name: self.metrics.shadow.labels(name) for name in ("agree", "disagree", "error")
        }
        try:
            while True:
                body, headers, ours = await queue.get()
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(settings.timeout):
                        status, payload = await connection.post(body, headers)
                    self.metrics.shadow_latency.observe(time.perf_counter() - started)
                    if status != 200:
                        outcomes["error"].inc()
                        continue
                    theirs = json.loads(payload).get("predictions")
                    agreed = agree(ours, theirs, settings.tolerance)
                    outcomes["agree" if agreed else "disagree"].inc()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    connection.close()
                    outcomes["error"].inc()
                    log.debug("shadow request failed: %r", error)
        finally:
            connection.close()
