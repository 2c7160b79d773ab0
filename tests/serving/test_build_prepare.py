"""The build Job's first step, run for real: package served over HTTP -> build context.

A package made by the packaging code is exported to a file and served by a local
`http.server`; `pitstop package prepare-build` (the command the build Job's init
container runs, rendered by rendering.build_job) fetches it into an empty BentoML home
and writes the build context. The context is then served with a real `bentoml serve`,
the way the image's entrypoint serves it, and answers predictions: also as the pod
the operator renders runs it, on a read-only root filesystem where only the pod
spec's emptyDirs are writable.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import local_http
import pitstop
import pytest
from pitstop.api.resource import ModelDeployment
from pitstop.packaging.bento import default_template
from pitstop.rendering import children
from serving_harness import Server, fraud_row, free_port
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
    """An exported fraud:7 package behind http://127.0.0.1:<port>/, and its retrained
    fraud:8 (the same libraries, another fit) at /retrained/."""
    root = tmp_path_factory.mktemp("package-source")
    served = root / "served"
    (served / "retrained").mkdir(parents=True)
    for version, rows, folder in (("7", 500, served), ("8", 800, served / "retrained")):
        frame = fraud_frame(rows, seed=int(version))
        joblib.dump(fraud_model(frame), root / "model.joblib")
        frame.to_csv(root / "train.csv", index=False)
        made = run(
            ["create", str(root / "model.joblib"), "--data", str(root / "train.csv"),
             "--name", "fraud", "--version", version, "--target", "label", "--export",
             str(folder)],
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
    # image does; the job's own store is not used. Nothing names the package: the
    # image sets no PITSTOP_MODEL, and serves the bento's one model.
    server = Server(
        str(context),
        {"BENTOML_HOME": str(context), "BENTOML_DO_NOT_TRACK": "true"},
        tmp_path / "serve.log",
    )
    try:
        server.wait_ready()
        answer = local_http.post(f"{server.url}/predict", json=fraud_row(amount=200.0), timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] in (["fraud"], ["ok"])
        evidence = local_http.get(f"{server.url}/evidence", timeout=10).json()
        assert (evidence["model"]["name"], evidence["model"]["version"]) == ("fraud", "7")
    finally:
        server.stop()


def test_a_retrained_version_shares_every_layer_of_its_image_but_the_bentos_files(
    package_server: tuple[str, Path], tmp_path: Path
) -> None:
    """BuildKit's and kaniko's caches key each layer on the Dockerfile lines and files
    before it: with nothing per-version ahead of the bento's own files, a new version
    trained with the same libraries rebuilds only its last layer, and a registry build
    cache (`spec.build.cache`) hits for every retrained model."""
    url, _ = package_server
    contexts = {}
    for version, source in (("7", "fraud-7.bentomodel"), ("8", "retrained/fraud-8.bentomodel")):
        contexts[version] = tmp_path / f"context-{version}"
        done = run(
            ["prepare-build", f"--source={url}/{source}", "--name=fraud",
             f"--version={version}", f"--output={contexts[version]}"],
            tmp_path / f"home-{version}",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]

    def env_files(context: Path) -> dict[str, bytes]:
        return {str(f.relative_to(context)): f.read_bytes()
                for f in sorted((context / "env").rglob("*")) if f.is_file()}  # fmt: skip

    seven, eight = env_files(contexts["7"]), env_files(contexts["8"])
    assert seven.keys() == eight.keys()
    differing = sorted(name for name in seven if seven[name] != eight[name])
    assert differing == [], f"per-version content ahead of the bento's files: {differing}"
    dockerfile = seven["env/docker/Dockerfile"].decode()
    assert "fraud:7" not in dockerfile
    assert "PITSTOP_MODEL" not in dockerfile
    # What does differ, the model, is copied in by the Dockerfile's last COPY.
    copies = [line for line in dockerfile.splitlines() if line.startswith("COPY")]
    assert copies[-1].endswith(" . ./"), copies
    assert list((contexts["8"] / "models" / "fraud").iterdir())


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


# --- The image as the operator's pod runs it --------------------------------------

BENTO_PATH = "/home/bentoml/bento"  # where BentoML's generated Dockerfile puts the bento

# A container of our own, without a container runtime: a mount namespace whose root is
# the host's filesystem made read-only (an overlay, so that mount points can be made
# without touching the host), the bento bind-mounted where the image holds it, a fresh
# tmpfs for each emptyDir, then chroot. The uid is not emulated (this machine's Python
# may be readable by root only); a read-only filesystem refuses root's writes too.
CONTAINER = r"""
set -eu
scratch=$1; context=$2; empty_dirs=$3; keep=$4; shift 4
root=$scratch/root
mount -t tmpfs tmpfs "$scratch/layer"
mkdir "$scratch/layer/upper" "$scratch/layer/work"
mount -t overlay overlay \
  -o "lowerdir=/,upperdir=$scratch/layer/upper,workdir=$scratch/layer/work" "$root"
mkdir -p "$root/$BENTO_PATH"
for path in $empty_dirs; do mkdir -p "$root/$path"; done
mount -o remount,ro "$root"
mount --bind "$context" "$root/$BENTO_PATH"
mount -o remount,bind,ro "$root/$BENTO_PATH"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
for path in $empty_dirs; do mount -t tmpfs -o mode=1777 tmpfs "$root/$path"; done
for path in $keep; do
  mkdir -p "$root/$path"
  mount --bind "$path" "$root/$path"
  mount -o remount,bind,ro "$root/$path"
done
exec chroot "$root" "$@"
"""


def image_env(dockerfile: str) -> dict[str, str]:
    """The ENV a BentoML Dockerfile sets (ARG defaults substituted), but PATH."""
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in dockerfile.splitlines():
        match = re.fullmatch(r"(ARG|ENV) ([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?", line.strip())
        if match is None:
            continue
        kind, name, value = match[1], match[2], match[3] or ""
        value = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                       lambda m: env.get(m[1], args.get(m[1], "")),
                       " ".join(shlex.split(value)))  # fmt: skip
        (args if kind == "ARG" else env)[name] = value
    env.pop("PATH", None)
    return env


class PodServer(Server):
    """`bentoml serve` of the bento as the pod runs it (see CONTAINER)."""

    def __init__(self, context: Path, pod: dict[str, Any], scratch: Path, log: Path) -> None:
        [container] = pod["containers"]
        empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        self.empty_dirs = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty]
        dockerfile = (context / "env" / "docker" / "Dockerfile").read_text()
        env = {**image_env(dockerfile), **{e["name"]: e["value"] for e in container["env"]}}
        self.context, self.scratch = context, scratch
        # The test's Python stands in for the image's: when it lives under a path the
        # pod mounts an emptyDir on (a clone in /tmp), put it back, read-only, on top.
        ours = (Path(sys.prefix), Path(pitstop.__file__).resolve().parents[1])
        self.keep = [str(p) for p in ours
                     if any(p.is_relative_to(d) for d in self.empty_dirs)]  # fmt: skip
        (scratch / "layer").mkdir(parents=True)
        (scratch / "root").mkdir()
        self.pod_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **env,
                        "BENTOML_DO_NOT_TRACK": "true"}  # fmt: skip
        super().__init__(BENTO_PATH, {}, log)

    def _launch(self) -> None:
        self.port = self.fixed_port or free_port()
        self.url = f"http://{self.host}:{self.port}"
        serve = [str(Path(sys.executable).with_name("bentoml")), "serve", BENTO_PATH,
                 "--host", self.host, "--port", str(self.port)]  # fmt: skip
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", CONTAINER, "sh",
             str(self.scratch), str(self.context), " ".join(self.empty_dirs), " ".join(self.keep),
             "env", "-i", *(f"{k}={v}" for k, v in self.pod_env.items()), *serve],
            env={"BENTO_PATH": BENTO_PATH, "PATH": os.environ["PATH"]},
            stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def test_the_image_serves_in_the_operators_pod_on_a_read_only_root(
    package_server: tuple[str, Path], tmp_path: Path
) -> None:
    """Only what the pod spec makes writable is: if the server needed another writable
    path, it would fail to start here, as it would in the cluster."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a read-only root filesystem needs root and unshare (util-linux)")
    url, served = package_server
    [exported] = served.glob("*.bentomodel")
    context = tmp_path / "context"
    done = run(["prepare-build", f"--source={url}/{exported.name}", "--name=fraud",
                "--version=7", f"--output={context}"], tmp_path / "job-home")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    md = ModelDeployment.model_validate({
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u"},
        "spec": {"model": {"name": "fraud", "version": "7"}, "image": "fraud:7",
                 "serving": {"replicas": 1}},
    })  # fmt: skip
    pod = children.pod_template(md, "fraud:7")["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    server = PodServer(context, pod, tmp_path / "pod", tmp_path / "serve.log")
    try:
        server.wait_ready()
        answer = local_http.post(f"{server.url}/predict", json=fraud_row(amount=200.0), timeout=10)
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    assert "Read-only file system" not in server.log.read_text()


def test_without_pitstop_model_a_store_of_several_models_is_refused_naming_them(
    package_server: tuple[str, Path], tmp_path: Path
) -> None:
    """The image serves its bento's one model; a store holding several is not guessed
    from, and the error says what it holds and what to set."""
    url, _ = package_server
    home = tmp_path / "home"
    for version, source in (("7", "fraud-7.bentomodel"), ("8", "retrained/fraud-8.bentomodel")):
        done = run(
            ["prepare-build", f"--source={url}/{source}", "--name=fraud",
             f"--version={version}", f"--output={tmp_path / version}"],
            home,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    template = default_template()
    found = subprocess.run(
        [sys.executable, "-c",
         "from pitstop_serving import predictor; print(predictor.package_folder(''))"],
        env={**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
             "PYTHONPATH": str(template)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert found.returncode != 0
    assert "the model store holds 2 models (fraud:7, fraud:8)" in found.stderr
    assert "set PITSTOP_MODEL" in found.stderr
