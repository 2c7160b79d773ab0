"""Structured logs: one JSON line per request on stdout, with its request id.

A logger of its own (not propagated) so BentoML's logging setup neither reformats nor
duplicates the lines; the JSON is built with `json.dumps` on a flat dict, which is the
cheapest correct encoding.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _Raw(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


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


def setup() -> logging.Logger:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Json())
    base = logging.getLogger("pitstop")
    base.handlers = [handler]
    base.setLevel(logging.INFO)
    base.propagate = False
    access = logging.getLogger("pitstop.access")
    raw = logging.StreamHandler(sys.stdout)
    raw.setFormatter(_Raw())
    access.handlers = [raw]
    access.propagate = False
    return access


class AccessLog:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._log = setup()

    def write(self, fields: dict[str, Any]) -> None:
        if self.enabled:
            fields["ts"] = round(time.time(), 6)
            self._log.info(json.dumps(fields))
