"""For every suite: how often the API server refused the operator, over the session.

Each operator fixture fails its own test on a refusal; this sums them up over every
operator log the session wrote (`operator*.log` under pytest's temporary folder), so
the run ends with the figure `grep -c Forbidden` would give.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pitstop.devcluster.operator_process import FORBIDDEN

REFUSED = pytest.StashKey[tuple[int, int]]()  # (lines with "Forbidden", operator logs)


@pytest.fixture(scope="session", autouse=True)
def _count_refusals(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    yield
    logs = sorted(tmp_path_factory.getbasetemp().rglob("operator*.log"))
    lines = sum(
        1
        for log in logs
        for line in log.read_text(errors="replace").splitlines()
        if FORBIDDEN in line
    )
    request.config.stash[REFUSED] = (lines, len(logs))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if REFUSED in config.stash and config.stash[REFUSED][1]:
        lines, logs = config.stash[REFUSED]
        terminalreporter.write_line(
            f"operator logs: {lines} lines with Forbidden (in {logs} operator logs of this session)"
        )
