"""The chart's alert rules, checked and unit-tested by Prometheus' own promtool (Debian's
prometheus package, `make system-deps`): they parse, and each fires — with the labels
and text a person reads — on the series that should fire it, and not before its `for`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RULES = HERE.parents[2] / "charts" / "pitstop" / "files" / "alerts.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("no `promtool` on PATH: run `make system-deps` (as root)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=HERE)


def test_the_rules_parse() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 10 rules found" in done.stdout


def test_each_alert_fires_when_it_should() -> None:
    done = promtool("test", "rules", "alerts_test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
