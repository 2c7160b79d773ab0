"""Long-running child processes of the local control plane: start, find, stop.

This module owns the operating-system side of the cluster: free loopback ports, starting
each component detached in its own session (so it outlives the `pitstop dev up` that
started it, and so its whole process group can be signalled), and stopping them again
without leaving a process or a listening port behind. It knows nothing about
Kubernetes; `cluster` decides what to run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Popen objects of the children this Python process started. Kept so they are not
# garbage-collected while running (Popen.__del__ warns, and pytest turns warnings into
# errors) and so `stop` can reap them; a later `pitstop dev down` in another process
# finds the same children by pid instead.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclasses.dataclass(frozen=True)
class Running:
    """What is recorded about a started process, enough to find and stop it later."""

    name: str
    pid: int
    # The executable's path: a pid alone could have been reused by an unrelated process.
    executable: str
    log: str


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now.

    The socket is closed before the port is handed to a child, so another process could
    take it in between; on a developer machine that race is rare enough to accept.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start(
    name: str,
    executable: Path,
    args: Sequence[str],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Running:
    """Start `executable` detached, in a new session, its output appended to a log file."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            [str(executable), *args],
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            # A new session makes the child a process-group leader that no terminal
            # signal reaches, and that we can stop as a group.
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return Running(name=name, pid=proc.pid, executable=str(executable), log=str(log_path))


def alive(running: Running) -> bool:
    """Whether the recorded process still runs (and is still the program we started)."""
    try:
        exe = os.readlink(f"/proc/{running.pid}/exe")
    except OSError:
        return False
    try:
        with open(f"/proc/{running.pid}/stat") as stat:
            # Field 3 (after the parenthesised command) is the state; Z is a zombie.
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and exe.removesuffix(" (deleted)") == running.executable


def _reap(pid: int) -> None:
    # Our own children (the pytest fixture's case) must be reaped or they linger as
    # zombies; other processes' children are reaped by their parent or by init.
    # Called once the process looks dead; it may still be exiting (not yet a zombie
    # that waitpid can collect), so wait briefly rather than poll once.
    child = _CHILDREN.get(pid)
    if child is None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=5)
    if child.returncode is not None:
        del _CHILDREN[pid]


def stop(running: Running, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it if it outlives `timeout` seconds."""
    if not alive(running):
        _reap(running.pid)
        return
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not alive(running):
                _reap(running.pid)  # it may have died a zombie just now: collect it
                return
            time.sleep(0.05)
    raise RuntimeError(f"{running.name} (pid {running.pid}) survived SIGKILL")


def kill(running: Running, *, timeout: float = 5.0) -> None:
    """SIGKILL the process group at once, as a crash would end it, and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(running.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while alive(running):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{running.name} (pid {running.pid}) survived SIGKILL")
        time.sleep(0.05)
    _reap(running.pid)


def wait_ports_closed(ports: Sequence[int], *, timeout: float = 10.0) -> list[int]:
    """Wait until none of `ports` accepts connections; return those still open."""
    deadline = time.monotonic() + timeout
    still = [p for p in ports if port_open(p)]
    while still and time.monotonic() < deadline:
        time.sleep(0.05)
        still = [p for p in still if port_open(p)]
    return still
