"""A real Prometheus (Debian's `prometheus` binary) scraping the namespace's model servers.

The process listens on 127.0.0.1 on a free port, keeps its TSDB in a scratch folder and
scrapes every second. Its targets come from a `file_sd_configs` JSON file that this
harness keeps in sync with the API, the way Prometheus' Kubernetes service discovery
would: every Ready pod of the namespace (Ready as the kubelet emulator reports it) is a
target `<podIP>:<containerPort>` labelled `namespace`, `pod`, `revision` (the pod's
`pitstop.dev/revision`), `model_deployment` and `model_version`. So the operator's
prometheus provider queries series of real scrapes of real model servers.

`stop()` ends the process (terminate, then kill) and the sync thread; nothing is left.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import local_http
import yaml
from pitstop.devcluster import testing

from harness import kubelet
from harness.listing import Listing

log = logging.getLogger(__name__)

POLL = 0.2  # seconds between two reads of the API (a period, not a synchronisation)
SCRAPE_INTERVAL = "1s"
READY_TIMEOUT = 60.0
LABELS = {  # target label -> pod label
    "revision": "pitstop.dev/revision",
    "model_deployment": "pitstop.dev/model-deployment",
    "model_version": "pitstop.dev/model-version",
}


def binary() -> str | None:
    return shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def target_groups(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file_sd content for `pods`: one group per Ready pod, sorted by name."""
    groups = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if not kubelet.is_ready(pod):
            continue
        meta = pod["metadata"]
        ports = pod["spec"]["containers"][0].get("ports") or []
        if not ports:
            continue
        labels = meta.get("labels") or {}
        groups.append(
            {
                "targets": [f"{pod['status']['podIP']}:{ports[0]['containerPort']}"],
                "labels": {
                    "namespace": meta["namespace"],
                    "pod": meta["name"],
                    **{key: labels.get(label, "") for key, label in LABELS.items()},
                },
            }
        )
    return groups


class Prometheus:
    """One Prometheus process for the pods of `namespace`; a context manager."""

    def __init__(
        self,
        cluster: testing.DevCluster,
        namespace: str,
        folder: Path,
        *,
        operator_metrics: str = "",
        rule_files: Sequence[Path] = (),
        listing: Listing | None = None,
    ) -> None:
        """`operator_metrics`: the operator's /metrics URL, scraped as job pitstop-operator;
        `rule_files`: rule files evaluated every second; `listing`: the namespace's pods
        as the kubelet and the gateways read them (else its own)."""
        self.listing = listing or Listing(cluster, namespace)
        self.cluster, self.namespace, self.folder = cluster, namespace, folder
        self.operator_metrics, self.rule_files = operator_metrics, tuple(rule_files)
        self.targets_file = folder / "targets.json"
        self.log_file = folder / "prometheus.log"
        self.url = ""
        self.groups: list[dict[str, Any]] = []  # what the file says now
        self.problems: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prometheus-sd", daemon=True)

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        executable = binary()
        if executable is None:
            raise RuntimeError("no `prometheus` on PATH: run `make system-deps` (as root)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write([])
        config = self.folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            with self.log_file.open("ab") as out:
                self._process = subprocess.Popen(
                    [
                        executable,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready():
                break
            self._end_process()
        else:
            tail = self.log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Prometheus did not become ready: {tail}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._end_process()

    def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def _wait_ready(self) -> bool:
        """True once /-/ready answers 200; False if the process exits first."""
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                if local_http.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            self._stop.wait(POLL)
        return False

    def _config(self) -> dict[str, Any]:
        jobs: list[dict[str, Any]] = [
            {
                "job_name": "model-servers",
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
            }
        ]
        if self.operator_metrics:
            url = httpx.URL(self.operator_metrics)
            jobs.append({
                "job_name": "pitstop-operator", "metrics_path": url.path,
                "static_configs": [{"targets": [f"{url.host}:{url.port}"]}],
            })  # fmt: skip
        return {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "rule_files": [str(f) for f in self.rule_files],
            "scrape_configs": jobs,
        }  # fmt: skip

    # --- service discovery ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.listing.read(max_age=POLL / 2).pods
                groups = target_groups(pods)
                if groups != self.groups:
                    self._write(groups)
            except Exception as error:  # keep running; a test reads `problems`
                log.exception("prometheus service discovery failed")
                if repr(error) not in self.problems:
                    self.problems.append(repr(error))
            self._stop.wait(POLL)

    def _write(self, groups: list[dict[str, Any]]) -> None:
        temporary = self.targets_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(groups, indent=1))
        temporary.replace(self.targets_file)  # atomic: Prometheus never reads half a file
        self.groups = groups

    # --- what tests ask ---------------------------------------------------------------

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector `promql` returns now."""
        answer = local_http.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        """The `data` of a GET of the HTTP API (`/api/v1/...`)."""
        answer = local_http.get(f"{self.url}{path}", timeout=5.0)
        answer.raise_for_status()
        return answer.json()["data"]

    def active_targets(self) -> list[dict[str, Any]]:
        answer = local_http.get(
            f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=5.0
        )
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["data"]["activeTargets"]
        return found
