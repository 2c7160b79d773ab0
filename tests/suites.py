"""Run the unit, integration, serving and e2e suites for `make test`, two of them side by side
where that costs no test its meaning.

One after the other, the suites took about 31 minutes on 2 cores, over our 30. They leave
the CPU idle at different times: while the integration suite runs, both cores are about 55 %
busy (its tests mostly wait on the control plane and an operator), while the e2e keeps them
55 to 100 % busy with its model servers and users' loads. So the work runs in two phases,
each suite in a pytest process of its own (and so on a control plane of its own):

1. The integration suite, beside the unit and serving suites (pure logic, and self-contained
   model servers with nothing timed) and then the fault-injection test. That test kills and
   restarts the API server, the operator and the leader; each step waits on a deadline, so
   it only slows where the CPU is shared: it passed at 584 s instead of 230 beside the e2e.
2. The e2e alone. Its statistical tests are what need the CPU: beside the integration suite,
   a stress test measured the candidate's capacity at 20 req/s instead of above 24, and a
   sequential bound came out at 0.046 instead of above 0.05 (README, "Where the suite's
   time goes").

Within a phase, the first process is shown live; the others write to files printed whole
when the phase ends. Every suite runs even if an earlier one failed, and the exit status is
the first failure's. Each pytest is started as `python -m pytest`: the operators the tests
start are forked from a warm interpreter, and a main script would run again in each child
(see `pitstop.devcluster.operator_process`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

FAULTS = "tests/integration/test_faults.py"
E2E = "tests/e2e"


@dataclass(frozen=True)
class Suite:
    name: str
    args: tuple[str, ...]


PHASES: tuple[tuple[Suite, ...], ...] = (
    (
        Suite("integration", ("tests/integration", f"--ignore={FAULTS}")),
        Suite("unit, serving and the fault test", ("tests/unit", "tests/serving", FAULTS)),
    ),
    (Suite("e2e", (E2E,)),),
)


@dataclass(frozen=True)
class Result:
    suite: Suite
    code: int
    seconds: float  # from the phase's start


def run_phase(suites: tuple[Suite, ...], logs: Path) -> list[Result]:
    started = time.monotonic()
    processes = []
    for i, suite in enumerate(suites):
        command = [sys.executable, "-m", "pytest", *suite.args, "--durations=15"]
        if i == 0:
            processes.append((suite, subprocess.Popen(command), None))
            continue
        log = logs / f"{i}.log"
        with log.open("w") as out:
            processes.append((suite, subprocess.Popen(command, stdout=out, stderr=out), log))

    def finish(process: subprocess.Popen[bytes]) -> tuple[int, float]:
        code = process.wait()
        return code, time.monotonic() - started

    with ThreadPoolExecutor(len(processes)) as pool:
        ended = list(pool.map(finish, [process for _, process, _ in processes]))
    for (suite, _, log), _ in zip(processes, ended, strict=True):
        if log is not None:
            print(f"\n===== {suite.name} (ran beside the suite above) =====", flush=True)
            print(log.read_text(errors="replace"), flush=True)
    return [Result(suite, code, seconds)
            for (suite, _, _), (code, seconds) in zip(processes, ended, strict=True)]  # fmt: skip


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="pitstop-suites-") as logs:
        for phase in PHASES:
            print(f"===== {' | '.join(s.name for s in phase)} =====", flush=True)
            results += run_phase(phase, Path(logs))
    print("\n===== suites =====")
    for r in results:
        print(f"{r.suite.name}: {'passed' if r.code == 0 else f'FAILED (exit {r.code})'}, "
              f"done {r.seconds:.0f} s after its phase began")  # fmt: skip
    return next((r.code for r in results if r.code != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
