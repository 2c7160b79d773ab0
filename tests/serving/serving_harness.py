"""Real `bentoml serve` processes for tests and benchmarks, and waiting on them.

Servers listen on free loopback ports; readiness and every other condition is polled
against a deadline (the short pause between polls is not synchronization: the
condition is re-checked until it holds or the deadline fails the test).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import httpx
import local_http

T = TypeVar("T")
BENTOML = str(Path(sys.executable).with_name("bentoml"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], deadline: float = 60.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    last_error: Exception | None = None
    while time.monotonic() < end:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError) as error:
            last_error = error
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {deadline}s (last error: {last_error})")


class Server:
    """One `bentoml serve` of a bento (or a service import path), by default on a free
    port of 127.0.0.1 (the e2e kubelet passes a pod's loopback IP and container port)."""

    def __init__(
        self,
        target: str,
        env: Mapping[str, str],
        log: Path,
        cwd: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.target, self.env, self.cwd, self.host = target, dict(env), cwd, host
        self.fixed_port = port
        self.log = log
        self._log_file = log.open("wb")
        self._launch()

    def _launch(self) -> None:
        self.port = free_port() if self.fixed_port is None else self.fixed_port
        self.url = f"http://{self.host}:{self.port}"
        self.process = subprocess.Popen(
            [BENTOML, "serve", self.target, "--host", self.host, "--port", str(self.port)],
            env={**os.environ, **self.env},
            cwd=self.cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, deadline: float = 90.0) -> Server:
        # A free port is only free until someone binds it: another process may take it
        # before the server does. Then start again on another port (twice at most).
        for attempt in range(3):
            try:
                self._wait_ready(deadline)
                return self
            except AssertionError as error:
                taken = "Address already in use" in str(error)
                if not taken or self.fixed_port is not None or attempt == 2:
                    raise
                self._launch()
        return self

    def _wait_ready(self, deadline: float) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}: "
                    + self.log.read_text(errors="replace")[-3000:]
                )
            return local_http.get(f"{self.url}/readyz", timeout=2).status_code == 200

        wait_for(ready, deadline, f"readiness of {self.url}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, rest = key.partition("{")
        if sample != name:
            continue
        found = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if found == wanted:
            return float(value)
    return 0.0


def fraud_row(**overrides: object) -> dict[str, object]:
    """A valid request row for the fraud packages (see serving_models.py)."""
    row: dict[str, object] = {"amount": 120.5, "count": 3, "country": "de", "is_new": False}
    row.update(overrides)
    return row
