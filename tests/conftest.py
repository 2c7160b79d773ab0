"""For every suite: how often the API server refused the operator, over the session.

Each operator fixture fails its own test on a refusal; this sums them up over every
operator log the session wrote (`operator*.log` under pytest's temporary folder), so
the run ends with the figure `grep -c Forbidden` would give — less the refusals of a
kube-apiserver that a test restarted, before it was ready again (see
`cluster.Outage`: it refuses everyone then), which are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pitstop.devcluster import cluster, operator_process

# (lines with "Forbidden", of them while a kube-apiserver restarted, operator logs)
REFUSED = pytest.StashKey[tuple[int, int, int]]()


@pytest.fixture(scope="session", autouse=True)
def _count_refusals(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    yield
    base = tmp_path_factory.getbasetemp()
    logs = sorted(base.rglob("operator*.log"))
    outages = [outage for record in base.rglob(cluster.OUTAGES_FILE)
               for outage in cluster.outages(record.parent.parent)]  # fmt: skip
    rbac = restarting = 0
    for log in logs:
        refused = operator_process.refusals(log.read_text(errors="replace"), outages)
        rbac, restarting = rbac + len(refused[0]), restarting + len(refused[1])
    request.config.stash[REFUSED] = (rbac + restarting, restarting, len(logs))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `quiet_cluster` count what the API server does for everyone, so they
    wait until nothing else moves. Run first, on a control plane no earlier test has
    left namespaces terminating on, they do not wait (the wait was ≈ 45 s at the end of
    the integration suite). The sort is stable: the rest keep their order."""
    items.sort(key=lambda item: item.get_closest_marker("quiet_cluster") is None)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if REFUSED in config.stash and config.stash[REFUSED][2]:
        lines, restarting, logs = config.stash[REFUSED]
        terminalreporter.write_line(
            f"operator logs: {lines - restarting} lines with Forbidden (in {logs} operator logs "
            "of this session)"
            + (f"; {restarting} more from a kube-apiserver restarting, not yet ready"
               if restarting else "")
        )  # fmt: skip
