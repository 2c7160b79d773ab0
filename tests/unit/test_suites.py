"""`make test`'s runner (tests/suites.py): every test file runs in exactly one suite, the
e2e's statistical tests have the machine to themselves, and a failure anywhere fails the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import suites

TESTS = Path(suites.__file__).parent
ROOT = TESTS.parent
NOT_IN_MAKE_TEST = ("benchmarks", "realnode")  # their own make targets


def selected(suite: suites.Suite) -> set[Path]:
    ignored = {ROOT / a.removeprefix("--ignore=") for a in suite.args if a.startswith("--ignore=")}
    files: set[Path] = set()
    for arg in suite.args:
        if arg.startswith("-"):
            continue
        path = ROOT / arg
        files |= {path} if path.is_file() else set(path.rglob("test_*.py"))
    return {f for f in files if f not in ignored}


def test_every_test_file_runs_in_exactly_one_suite() -> None:
    every = {f for f in TESTS.rglob("test_*.py")
             if f.relative_to(TESTS).parts[0] not in NOT_IN_MAKE_TEST}  # fmt: skip
    runs = [selected(suite) for phase in suites.PHASES for suite in phase]
    assert set().union(*runs) == every
    assert sum(len(r) for r in runs) == len(every)


def test_the_e2e_runs_in_a_phase_of_its_own() -> None:
    (phase,) = [phase for phase in suites.PHASES
                if any(ROOT / suites.E2E in f.parents for s in phase for f in selected(s))]  # fmt: skip
    assert len(phase) == 1, "the e2e's statistical tests run beside another suite"


def test_a_failing_suite_fails_the_run_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test_fails.py").write_text("def test_fails():\n    assert False\n")
    (tmp_path / "test_passes.py").write_text("def test_passes():\n    assert True\n")
    (tmp_path / "test_later.py").write_text("def test_later():\n    assert True\n")
    monkeypatch.setattr(suites, "PHASES", (
        (suites.Suite("first", (str(tmp_path / "test_passes.py"),)),
         suites.Suite("beside", (str(tmp_path / "test_fails.py"),))),
        (suites.Suite("second", (str(tmp_path / "test_later.py"),)),),
    ))  # fmt: skip
    assert suites.main() == 1
    out = capsys.readouterr().out
    assert "beside: FAILED (exit 1)" in out
    assert "second: passed" in out
    assert "test_fails.py:2: AssertionError" in out  # the side-by-side log is shown
