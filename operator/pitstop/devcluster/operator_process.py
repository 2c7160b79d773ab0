"""The real operator (`pitstop run`) as a child process, for the demo and the tests.

Tests stop it with SIGKILL at awkward moments to prove that all rollout state lives
in the API, and start it again with the same command a user runs; they freeze it
(SIGSTOP) to play a replica that lost its lease without knowing. It runs with the
kubeconfig it is given: in the tests and the demo, a token of the chart's
ServiceAccount (see `install`), so a 403 in its log is a rule the chart lacks.

The tests start it about 150 times a run (once per test, and again after every kill),
and importing Pitstop, Kopf and the Kubernetes client costs each start ≈ 1.9 s of CPU,
most of its time to live. So, unless told `warm=False`, it is forked from a *warm*
interpreter that imported them once (multiprocessing's fork server), the way a
pre-forking server starts its workers: the same `pitstop run` command line, kubeconfig
and environment, a process of its own with its own pid, signals and log; only the
imports are done already. The demo starts it cold, exactly as a user's shell does,
and so does the scale benchmark, whose CPU and RSS figures must include the imports.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx

from pitstop.devcluster import cluster
from pitstop.devcluster.processes import free_port

# A 403 always shows its reason, "Forbidden", capitalised: in the client's exception text
# (`Reason: Forbidden`) and in Kopf's (`'reason': 'Forbidden'`). Matched case-sensitively,
# as the issue's `grep -c Forbidden` does, because the API server also words an
# admission denial (422 Invalid, a policy refusing a write) "... is forbidden: ...",
# which is not a missing RBAC rule.
FORBIDDEN = "Forbidden"
# How a line of the operator's log starts (Kopf's format, local time).
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def refusals(log: str, outages: Sequence[cluster.Outage] = ()) -> tuple[list[str], list[str]]:
    """The lines of an operator log about a request the API server refused (403): those
    its RBAC refused, and those it refused while it was restarting (`cluster.Outage`:
    not ready, its RBAC caches not synced). A line without a time of its own (a
    traceback's) goes with the last one that had one."""
    rbac: list[str] = []
    restarting: list[str] = []
    at: datetime | None = None
    for line in log.splitlines():
        stamp = _STAMP.match(line)
        if stamp:
            at = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f")
        if FORBIDDEN not in line:
            continue
        if at is not None and any(outage.covers(at) for outage in outages):
            restarting.append(line)
        else:
            rbac.append(line)
    return rbac, restarting


@dataclasses.dataclass(frozen=True)
class Election:
    """`pitstop run --leader-elect`: the Lease (in a namespace whose Role allows it, the
    release's) and its timing in seconds."""

    namespace: str
    name: str = "pitstop-operator"
    duration: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def args(self) -> list[str]:
        return ["--leader-elect", f"--lease-namespace={self.namespace}",
                f"--lease-name={self.name}", f"--lease-duration={self.duration}",
                f"--renew-deadline={self.renew_deadline}",
                f"--retry-period={self.retry_period}"]  # fmt: skip


# What the warm interpreter imports once: everything `pitstop run` imports. (A child
# also runs the parent's main script again, as multiprocessing does, unless it was
# started as a module: the Makefile runs `python -m pytest`.)
_WARM_MODULES = ["pitstop.cli", "pitstop.handlers"]
_warm_lock = threading.Lock()
_warm_children: list[BaseProcess] = []


def _run_warm(args: list[str], env: dict[str, str], log_path: str) -> None:
    """In the forked child: `pitstop <args>`, its output appended to `log_path`."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(env)
    # The one setting read at import by what the warm interpreter imported: the
    # kubernetes client's default kubeconfig, from $KUBECONFIG as it was then. (Pitstop
    # reads its own settings from the environment when it needs them.)
    from kubernetes.config import kube_config

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = env.get("KUBECONFIG", "~/.kube/config")
    sys.argv = ["pitstop", *args]
    runpy.run_module("pitstop", run_name="__main__", alter_sys=True)  # `python -m pitstop`


def _kill_warm_children() -> None:
    """At exit, before multiprocessing joins its children: none may keep the tests
    waiting (a test that failed before stopping its operator)."""
    for child in _warm_children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)


atexit.register(_kill_warm_children)  # registered after multiprocessing's: runs first


class _WarmProcess:
    """A child of the fork server, behind the part of `subprocess.Popen` used here."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        log_path.touch()  # there from the start, as with a log opened for `Popen`
        with _warm_lock:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_WARM_MODULES)
            self._child = context.Process(
                target=_run_warm, args=(args, env, str(log_path)), name="pitstop run"
            )
            self._child.start()
            _warm_children[:] = [c for c in _warm_children if c.is_alive()] + [self._child]
        assert self._child.pid is not None
        self.pid: int = self._child.pid

    @property
    def returncode(self) -> int | None:
        return self._child.exitcode

    def poll(self) -> int | None:
        return self._child.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._child.join(timeout)
        if self._child.exitcode is None:
            raise subprocess.TimeoutExpired("pitstop run", timeout or 0.0)
        return self._child.exitcode

    def send_signal(self, sig: int) -> None:
        if self._child.exitcode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class OperatorProcess:
    """One replica. Started again after a kill it keeps its `identity`, as a container
    restarted in the same pod keeps its pod's name: it may take its own Lease back at
    once. Two processes running at once must have different identities."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        namespaces: tuple[str, ...] = (),
        *,
        election: Election | None = None,
        identity: str | None = None,
        warm: bool = True,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.warm = warm
        self.log_path = log_path
        self.namespaces = namespaces
        self.election = election
        self.identity = identity
        self._process: subprocess.Popen[bytes] | _WarmProcess | None = None
        self._liveness = ""
        self.metrics_url = ""
        """The operator's own /metrics, once started."""

    def start(self, timeout: float = 60.0, *, wait: bool = True) -> None:
        """Start it, and wait until it is live unless told not to (`wait_live` later),
        as a kubelet restarting a container goes on with other things meanwhile.

        Its ports are free when chosen, but another process may bind one before the
        operator does (seen once in a full suite): then it is started again on others."""
        for attempt in range(3):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._launch()
            if not wait:
                return
            try:
                self.wait_live(timeout)
                return
            except AssertionError:
                assert self._process is not None
                taken = b"address already in use" in self.log_path.read_bytes()[logged:]
                if attempt == 2 or self._process.poll() is None or not taken:
                    raise

    def _launch(self) -> None:
        port = free_port()
        self._liveness = f"http://127.0.0.1:{port}/healthz"
        metrics = free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        args = ["run", f"--liveness={self._liveness}", f"--metrics-address=127.0.0.1:{metrics}"]
        args += [f"--namespace={ns}" for ns in self.namespaces]
        if self.election is not None:
            args += self.election.args()
        if self.identity is not None:
            args.append(f"--identity={self.identity}")
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        if self.warm:
            self._process = _WarmProcess(args, env, self.log_path)
            return
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen([sys.executable, "-m", "pitstop", *args],
                                             stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip

    def wait_live(self, timeout: float = 60.0) -> None:
        """Wait until the started process answers its liveness probe."""
        assert self._process is not None, "not started"
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise AssertionError(f"operator exited early; see {self.log_path}:\n{self.log()}")
            try:
                if httpx.get(self._liveness, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"operator not live after {timeout}s:\n{self.log()}")
            time.sleep(0.2)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        """Whether it was started and has not exited (killed, stopped or by itself)."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a node dying under the operator."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: frozen mid-whatever, as a replica in a long pause or cut off."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: it goes on from where it froze."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def _stop(self, sig: signal.Signals) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a frozen one cannot act on SIGTERM
            self._process.send_signal(sig)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None

    def log_size(self) -> int:
        """Where the log ends now, to read what comes after (`log_since`)."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def forbidden(self, outages: Sequence[cluster.Outage] = ()) -> list[str]:
        """The log's lines about a request the API server refused (403), whole log, but
        for those during `outages` (a restarting API server refuses everyone)."""
        if not self.log_path.exists():
            return []
        return refusals(self.log_path.read_text(errors="replace"), outages)[0]

    def assert_not_refused(self, outages: Sequence[cluster.Outage] = ()) -> None:
        """Fail if the API server refused the operator anything: its RBAC lacks a rule."""
        refused = self.forbidden(outages)
        assert not refused, (
            f"the API server refused the operator {len(refused)} time(s), see {self.log_path}:\n"
            + "\n".join(refused[:5])
        )
