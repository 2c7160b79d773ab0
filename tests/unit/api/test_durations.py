from __future__ import annotations

from datetime import timedelta

import pytest
from pitstop.api import durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1.5m", 90), ("1h1m1s", 3661)],
)
def test_parse(text: str, expected: float) -> None:
    assert durations.parse(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("text", ["", "30", "s", "10 s", "1d", "-5s", "5s ", "1m 30s"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        durations.parse(text)
