"""Parsing of the Go-style durations accepted by the spec ("1m30s", "500ms")."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse(text: str) -> timedelta:
    """Return the duration `text` denotes; raise ValueError for anything else."""
    position = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 1m30s, 500ms)")
    return timedelta(seconds=seconds)
