"""Structured logs: one JSON line per request on stdout, with its request id.

Other pitstop loggers (start-up, auth, mirror) write the same JSON shape through a
logger of their own (not propagated), so BentoML's logging setup neither reformats
nor duplicates them.

Request lines skip `logging` altogether: a record, a handler lock and a write and
flush per request cost more than a cheap prediction's whole HTTP handling
(profiled: 8 % of its CPU). Lines are built with `json.dumps` on a flat dict (the
cheapest correct encoding) and written together at most `FLUSH_SECONDS` after the
first of them, in one write; whatever is buffered is written at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
from typing import Any, TextIO

FLUSH_SECONDS = 0.05


class _Json(logging.Formatter):
    """Other pitstop loggers (auth, mirror, start-up) in the same JSON shape."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": round(record.created, 6),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def setup() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Json())
    base = logging.getLogger("pitstop")
    base.handlers = [handler]
    base.setLevel(logging.INFO)
    base.propagate = False


class AccessLog:
    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._stream = stream
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        setup()
        atexit.register(self.flush)

    def write(self, fields: dict[str, Any]) -> None:
        """Queue one request's line (call on the event loop)."""
        if not self.enabled:
            return
        fields["ts"] = round(time.time(), 6)
        self._lines.append(json.dumps(fields))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        stream = self._stream or sys.stdout
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # stdout closed at exit: nothing left to tell
            pass
