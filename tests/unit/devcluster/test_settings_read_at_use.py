"""Settings from the environment are read when used, not when a module is imported.

The tests fork each operator from an interpreter that imported Pitstop long before
(`devcluster.operator_process`, warm starts); a setting frozen at import would be the
fork server's environment, not the one the operator was started with. A user's pod
is never affected, but a value read at import would make every warm test operator
quietly ignore what its test asked for.
"""

from __future__ import annotations

import pytest
from pitstop import reconcile
from pitstop.metrics import prometheus


def test_the_operator_wide_prometheus_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITSTOP_PROMETHEUS_URL", "http://prometheus.monitoring:9090")
    assert prometheus.default_address() == "http://prometheus.monitoring:9090"
    monkeypatch.delenv("PITSTOP_PROMETHEUS_URL")
    assert prometheus.default_address() == ""


def test_the_look_period_is_read_when_the_next_look_is_planned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With nothing known about the verdict, the next look is one look period away.
    monkeypatch.setenv("PITSTOP_LOOK_SECONDS", "3.5")
    assert reconcile._due(None, None) == 3.5
    monkeypatch.setenv("PITSTOP_LOOK_SECONDS", "0.5")
    assert reconcile._due(None, None) == 0.5
