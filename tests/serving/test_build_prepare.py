"""The build Job's first step, run for real: package served over HTTP -> build context.

A package made by the packaging code is exported to a file and served by a local
`http.server`; `pitstop package prepare-build` (the command the build Job's init
container runs, rendered by rendering.build_job) fetches it into an empty BentoML home
and writes the build context. The context is then served with a real `bentoml serve`,
the way the image's entrypoint serves it, and answers predictions.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pytest
from serving_harness import Server, fraud_row
from serving_models import fraud_frame, fraud_model

pytestmark = pytest.mark.serving

PITSTOP = str(Path(sys.executable).with_name("pitstop"))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run(
        [PITSTOP, "package", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def package_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An exported fraud:7 package behind http://127.0.0.1:<port>/."""
    root = tmp_path_factory.mktemp("package-source")
    frame = fraud_frame(500, seed=7)
    joblib.dump(fraud_model(frame), root / "model.joblib")
    frame.to_csv(root / "train.csv", index=False)
    served = root / "served"
    served.mkdir()
    made = run(
        ["create", str(root / "model.joblib"), "--data", str(root / "train.csv"),
         "--name", "fraud", "--version", "7", "--target", "label", "--export", str(served)],
        root / "maker-home",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_prepare_build_fetches_verifies_and_the_context_serves_predictions(
    package_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = package_server
    [exported] = served.glob("*.bentomodel")
    context, message = tmp_path / "context", tmp_path / "termination-log"
    home = tmp_path / "job-home"
    done = run(
        ["prepare-build", f"--source={url}/{exported.name}", "--name=fraud", "--version=7",
         f"--output={context}", "--image=registry.example.com/ml/fraud:7-abc",
         f"--termination-log={message}"],
        home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads(message.read_text())
    assert result["package"] == "fraud:7"
    assert result["packageDigest"].startswith("sha256:")
    assert result["image"] == "registry.example.com/ml/fraud:7-abc"
    dockerfile = (context / "env" / "docker" / "Dockerfile").read_text()
    assert "EXPOSE 3000" in dockerfile
    assert "--mount=type=cache" in dockerfile  # BuildKit is the default builder
    assert list((context / "models" / "fraud").iterdir())  # the model is in the context

    # Serve the context itself, with its own models folder as BentoML's home, as the
    # image does; the job's own store is not used.
    server = Server(
        str(context),
        {"BENTOML_HOME": str(context), "PITSTOP_MODEL": "fraud:7", "BENTOML_DO_NOT_TRACK": "true"},
        tmp_path / "serve.log",
    )
    try:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/predict", json=fraud_row(amount=200.0), timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] in (["fraud"], ["ok"])
    finally:
        server.stop()


def test_prepare_build_refuses_a_package_that_is_not_the_named_version(
    package_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = package_server
    [exported] = served.glob("*.bentomodel")
    done = run(
        ["prepare-build", f"--source={url}/{exported.name}", "--name=fraud", "--version=8",
         f"--output={tmp_path / 'context'}"],
        tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 1
    assert "holds package fraud:7" in done.stderr
    assert "names fraud:8" in done.stderr


def test_prepare_build_reports_a_missing_source(
    package_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = package_server
    done = run(
        ["prepare-build", f"--source={url}/nothing.bentomodel", "--name=fraud", "--version=7",
         f"--output={tmp_path / 'context'}"],
        tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr
