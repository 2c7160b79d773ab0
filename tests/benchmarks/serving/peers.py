"""The servers compared: bare BentoML, the Pitstop template, MLServer, a thin floor.

Also a near-zero-CPU stand-in shadow (nginx answering a fixed body) for measuring
the primary's own mirroring cost.

Each is started with one worker on a free loopback port, and waited on (readiness
polled against a deadline). MLServer gets a virtualenv of its own in the cache
folder: its pins clash with BentoML's, and uvloop 0.22+ crashes its worker
(SeldonIO/MLServer#2286).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.serving.serving_harness import free_port

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "model_images" / "serving"
VENV_BIN = Path(sys.executable).parent
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"]

BARE_SERVICE = """
import os
import joblib
import numpy as np
import bentoml


@bentoml.service(workers=1)
class Bare:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_FILE"])

    @bentoml.api
    def predict(self, {params}) -> dict:
        x = np.array([[{names}]], dtype=np.float64)
        return {{"predictions": self.model.predict(x).tolist()}}
"""

THIN_APP = """
import os
import joblib
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

model = joblib.load(os.environ["BENCH_MODEL_FILE"])
NAMES = {names!r}


async def predict(request: Request) -> JSONResponse:
    body = await request.json()
    x = np.array([[body[name] for name in NAMES]], dtype=np.float64)
    return JSONResponse({{"predictions": model.predict(x).tolist()}})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)]
)
"""


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    # The primary pipelines copies over one kept-alive connection: never close it.
    keepalive_requests 1000000000;
    keepalive_timeout 3600s;
    server {{
        listen 127.0.0.1:{port};
        location = /predict {{
            default_type application/json;
            add_header Server-Timing "app;dur=0.010" always;
            return 200 '{body}';
        }}
        location = /readyz {{
            return 200 'ok';
        }}
    }}
}}
"""


class Process:
    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        ready: str,
        cpus: str | None = None,
        nice: int = 0,
    ) -> None:
        self.ready_url = ready
        # taskset pins the server and every process it starts (affinity is inherited).
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]
        if nice:
            argv = ["nice", "-n", str(nice), *argv]
        self._log = log.open("wb")
        self.log = log
        self.process = subprocess.Popen(
            argv, env={**os.environ, **env}, cwd=cwd, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait(self, deadline: float = 120.0) -> Process:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.ready_url} not ready after {deadline}s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and all its children."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            total = 0.0
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
            return total
        except psutil.Error:
            return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def bare(folder: Path, model_file: Path, names: list[str], home: Path) -> tuple[Process, str]:
    (folder / "bare_service.py").write_text(
        BARE_SERVICE.format(params=", ".join(f"{n}: float" for n in names), names=", ".join(names))
    )
    port = free_port()
    env = {"BENCH_MODEL_FILE": str(model_file), "BENTOML_HOME": str(home)}
    argv = [str(VENV_BIN / "bentoml"), "serve", "bare_service:Bare", "--port", str(port),
            "--host", "127.0.0.1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Process(argv, env, folder, folder / "bare.log", f"{url}/readyz"), f"{url}/predict"


def template(
    folder: Path,
    tag: str,
    home: Path,
    keys: Path,
    mirror: Path,
    name: str = "template",
    cpus: str | None = None,
    nice: int = 0,
    batch_wait_ms: float = 0.0,
) -> tuple[Process, str]:
    port = free_port()
    env = {
        "BENTOML_HOME": str(home),
        "PITSTOP_MODEL": tag,
        "PITSTOP_API_KEYS_DIR": str(keys),
        # Throttling on, with a limit the load never reaches: its cost is measured.
        "PITSTOP_RATE_LIMIT_RPS": "1000000",
        "PITSTOP_RATE_LIMIT_BURST": "1000000",
        "PITSTOP_MIRROR_CONFIG": str(mirror),
        "PYTHONPATH": str(TEMPLATE),
        "PITSTOP_BATCH_WAIT_MS": f"{batch_wait_ms:g}",  # 0: off
    }
    argv = [str(VENV_BIN / "bentoml"), "serve", "service:Pitstop", "--port", str(port),
            "--host", "127.0.0.1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    process = Process(argv, env, TEMPLATE, folder / f"{name}.log", f"{url}/readyz", cpus, nice)
    return process, f"{url}/predict"


def ensure_nginx() -> str:
    """nginx from Debian, installed on first use (no service is started: run by hand)."""
    found = shutil.which("nginx")
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    for package in ("nginx-light", "nginx"):
        installed = subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if installed.returncode == 0 and shutil.which("nginx"):
            return str(shutil.which("nginx"))
    raise RuntimeError("nginx could not be installed")


def fixed_shadow(
    binary: str, folder: Path, answer: bytes, cpus: str | None = None
) -> tuple[Process, str]:
    """nginx in the foreground answering every POST /predict with `answer` (JSON).

    It reports `Server-Timing: app;dur=` like the template, so the primary's whole
    mirroring path (pipelined copies, answer parsing, comparison, counters) runs
    while the shadow itself costs almost no CPU."""
    # Byte for byte what the primary answers, as a healthy shadow of the same
    # template would: the primary's comparison takes its shortcut (equal bytes).
    text = answer.decode()
    json.loads(text)
    if "'" in text or "\\" in text or "$" in text:
        raise ValueError(f"cannot quote {text!r} for nginx")
    root = folder / "nginx"
    root.mkdir(exist_ok=True)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(folder=root, port=port, body=text))
    url = f"http://127.0.0.1:{port}"
    argv = [binary, "-p", str(root), "-e", str(root / "nginx-error.log"), "-c", str(conf)]
    return Process(argv, {}, root, folder / "nginx.log", f"{url}/readyz", cpus), f"{url}/predict"


def thin(folder: Path, model_file: Path, names: list[str]) -> tuple[Process, str]:
    (folder / "thin_app.py").write_text(THIN_APP.format(names=names))
    port = free_port()
    argv = [str(VENV_BIN / "uvicorn"), "thin_app:app", "--port", str(port), "--host",
            "127.0.0.1", "--workers", "1", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = {"BENCH_MODEL_FILE": str(model_file)}
    return Process(argv, env, folder, folder / "thin.log", f"{url}/health"), f"{url}/predict"


def ensure_mlserver(cache: Path) -> Path:
    venv = cache / "mlserver-venv"
    binary = venv / "bin" / "mlserver"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        import sklearn

        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *MLSERVER_PINS,
             f"scikit-learn=={sklearn.__version__}"],
            check=True,
        )  # fmt: skip
    return binary


def mlserver(
    binary: Path, folder: Path, model_file: Path, name: str,
    batching: tuple[int, float] | None = None,
) -> tuple[Process, str]:  # fmt: skip
    """MLServer's sklearn runtime; `batching`: its adaptive batching on, as
    (max_batch_size, max_batch_time in seconds)."""
    root = folder / f"mlserver-{name}{'-batching' if batching else ''}"
    model_dir = root / name
    model_dir.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    # Defaults except the ports (and no per-request access log line parity issues).
    (root / "settings.json").write_text(
        json.dumps({"http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port})
    )
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(model_file)},
                **(
                    {"max_batch_size": batching[0], "max_batch_time": batching[1]}
                    if batching
                    else {}
                ),
            }
        )
    )
    url = f"http://127.0.0.1:{http_port}"
    process = Process(
        [str(binary), "start", str(root)], {}, root, folder / f"{root.name}.log",
        f"{url}/v2/models/{name}/ready",
    )  # fmt: skip
    return process, f"{url}/v2/models/{name}/infer"
