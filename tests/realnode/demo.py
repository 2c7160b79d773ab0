"""`sudo make demo-realnode`: the demo's story on a real node, every image built for real.

`make demo` tells it on KWOK with model servers started beside the pods; this one runs
nothing beside the cluster. A real node (`pitstop dev up --node real`: containerd,
runc, kubelet, kube-proxy, CoreDNS, a registry) comes up; the operator's image and a
rootless BuildKit image are built on it, and the chart installs the operator as pods.
Each ModelDeployment names a model package and no image, so the operator's own build
Job turns it into a serving image (BentoML's Dockerfile, the registry as layer cache),
pushes it, and model pods pull it by its manifest digest and run it under `restricted`.
Users' requests go to the entry Service's ClusterIP, so kube-proxy splits them between
the pods as the operator scaled them.

v1 deploys; v2, another fit, goes through a canary step under analysis and is promoted;
v3, whose class (in the team's own module, which no image installs: the package carries
it) fails one call in five, is rolled back by itself.
Needs root and the node's binaries (`make node-binaries`, ≈ 11-19 min once); takes
≈ 15-25 min on 2 cores, most of it the first image builds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests")]  # tests/: local_http

import local_http  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import test_build_job as realnode  # noqa: E402  (its package server and chart install)
from pitstop import view  # noqa: E402
from pitstop.devcluster import buildimages, nodeconfig, testing  # noqa: E402
from pitstop.devcluster import cluster as devcluster  # noqa: E402
from rich.console import Console, Group  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

STATE = REPO / ".dev" / "demo-realnode"
NAMESPACE = "demo"
NAME = "fraud"
ROW = {"f0": 1.0, "f1": 1.0, "f2": 0.0, "f3": 0.0}
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "60s"}]}}
ANALYSIS = {"interval": "5s", "failureLimit": 1, "minRequests": 20,
            "metrics": [{"name": "errors", "builtin": "errorRate", "maxAboveStable": 0.01}]}  # fmt: skip
USERS = 4  # concurrent users, one request per connection (kube-proxy picks per connection)
console = Console()


# The user's own code v3 uses: a module beside the training data, as a team would keep
# a custom transformer. No image installs it: packaging ships it inside the package.
FLAKY_MODULE = """\
import itertools

from sklearn.base import BaseEstimator, ClassifierMixin


class FailsOneInFive(ClassifierMixin, BaseEstimator):
    \"\"\"A fitted classifier that raises on every fifth call (counted per process).\"\"\"

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y=None):
        self.classes_ = self.model.classes_
        self.n_features_in_ = self.model.n_features_in_
        self.feature_names_in_ = self.model.feature_names_in_
        return self

    def predict(self, X):
        if next(self.__dict__.setdefault("_calls", itertools.count(1))) % 5 == 0:
            raise RuntimeError("one call in five fails")
        return self.model.predict(X)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_calls", None)
        return state
"""


def package(folder: Path, exported: Path, version: str, *, flaky: bool = False) -> None:
    """`pitstop package create` of a logistic regression fitted with seed `version`;
    `flaky`: wrapped in the user's own `FailsOneInFive`, run where its module imports."""
    rng = np.random.default_rng(int(version))
    frame = pd.DataFrame(rng.normal(size=(400, 4)), columns=[f"f{i}" for i in range(4)])
    frame["y"] = (frame["f0"] + frame["f1"] > 0).astype(int)
    model: Any = LogisticRegression().fit(frame.drop(columns="y"), frame["y"])
    if flaky:
        (folder / "team_models.py").write_text(FLAKY_MODULE)
        sys.path.insert(0, str(folder))
        import team_models

        model = team_models.FailsOneInFive(model).fit(frame.drop(columns="y"))
    import joblib

    joblib.dump(model, folder / f"model-{version}.joblib")
    frame.to_parquet(folder / f"train-{version}.parquet")
    made = subprocess.run(
        [str(Path(sys.executable).with_name("pitstop")), "package", "create",
         f"model-{version}.joblib", "--data", f"train-{version}.parquet",
         "--name", NAME, "--version", version, "--target", "y", "--export", str(exported)],
        env={**os.environ, "BENTOML_HOME": str(folder / "home"), "BENTOML_DO_NOT_TRACK": "true"},
        cwd=folder, check=False, capture_output=True, text=True,
    )  # fmt: skip
    if made.returncode != 0:
        raise SystemExit(f"packaging v{version} failed:\n{made.stderr[-2000:]}")
    for line in made.stdout.splitlines():
        console.print(f"  {line}")


class Users:
    """Steady users of the entry Service: every answer's status, by when it came."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(USERS)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = local_http.post(self.url, json=ROW, timeout=5).status_code
            except httpx.HTTPError:
                status = 0  # no answer at all
            self.answers.append((time.monotonic(), status))
            self._stop.wait(0.1)

    def __enter__(self) -> Users:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def table(self) -> Table:
        since = time.monotonic() - 5
        recent = Counter(s for t, s in self.answers if t >= since)
        total = Counter(s for _, s in self.answers)
        table = Table("users' answers", "last 5 s", "in all", title_justify="left",
                      title="users' requests through the entry Service (kube-proxy)")  # fmt: skip
        for status in sorted(total):
            label = "no answer" if status == 0 else f"HTTP {status}"
            table.add_row(label, str(recent[status]), str(total[status]))
        return table


def follow(cluster: testing.DevCluster, users: Users | None, title: str, done: Any,
           timeout: float) -> dict[str, Any]:  # fmt: skip
    console.rule(f"[bold]{title}")
    started = time.monotonic()
    deadline = started + timeout
    with Live(console=console, refresh_per_second=2) as live:
        while True:
            obj = realnode._get(cluster, "modeldeployments.pitstop.dev", NAME, "-n", NAMESPACE)
            parts: list[Any] = [view.render(obj)]
            if users is not None:
                parts.append(users.table())
            live.update(Group(*parts))
            status = obj.get("status", {})
            if done(status) and status.get("observedGeneration") == obj["metadata"]["generation"]:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{title}: not finished after {timeout:.0f} s")
            time.sleep(1)
    console.print(f"  done in {time.monotonic() - started:.0f} s")
    return obj


def model_deployment(packages: str, version: str) -> dict[str, Any]:
    """The build tests' ModelDeployment (no spec.image), with two replicas and the
    demo's analysis."""
    md = realnode._model_deployment(NAME, NAMESPACE, packages, version)
    md["spec"].update({"serving": {"replicas": 2}, "strategy": CANARY, "analysis": ANALYSIS})
    return md


def serving(version: str) -> Any:
    return lambda s: (
        s.get("phase") == "Healthy" and (s.get("stable") or {}).get("version") == version
    )


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("a real node needs root (a bridge, iptables, network namespaces, "
                         "mounts, cgroups): run `sudo make demo-realnode`")  # fmt: skip
    console.rule("[bold]Pitstop on a real node: built, rolled out and rolled back for real")
    console.print("1. A real node beside the control plane: containerd, runc, kubelet, "
                  "kube-proxy, CoreDNS, a registry")  # fmt: skip
    handle = devcluster.Cluster(
        STATE / "cluster", node="real", log=lambda m: console.print(f"  {m}")
    )
    cluster = testing.DevCluster(handle.up(timeout=300))
    try:
        console.print("2. The operator's image and a rootless BuildKit image, built on the node")
        log = lambda m: console.print(f"  {m}")  # noqa: E731
        operator_image = buildimages.operator_image(cluster.bin_dir, REPO, log)
        buildkit_image = buildimages.buildkit_image(cluster.bin_dir, log)
        cache = f"{nodeconfig.registry_host()}/models/build-cache"
        release = realnode._install_chart(cluster, operator_image,
                                          f"build.buildkitImage={buildkit_image}",
                                          f"build.cache.repository={cache}")  # fmt: skip
        console.print(f"  the chart installed; the operator runs as pods in {release.namespace}")
        cluster.create_namespace(NAMESPACE, pod_security="restricted")
        folder = STATE / "packages"
        shutil.rmtree(folder, ignore_errors=True)  # a fresh store: a tag is packaged once
        exported = folder / "out"
        exported.mkdir(parents=True, exist_ok=True)
        console.print("3. Three model packages: v1, v2 good; v3 fails one call in five, by a "
                      "class of the team's own module (shipped inside its package)")  # fmt: skip
        for version in ("1", "2", "3"):
            package(folder, exported, version, flaky=version == "3")
        with realnode.serve_packages(exported) as packages:
            cluster.kubectl("apply", "-f", "-", input=json.dumps(model_deployment(packages, "1")))
            follow(cluster, None, "4. v1: built by the operator's build Job, then deployed",
                   serving("1"), timeout=1500)  # fmt: skip
            with Users(realnode._entry_url(cluster, NAME, NAMESPACE)) as users:
                cluster.kubectl(
                    "apply", "-f", "-", input=json.dumps(model_deployment(packages, "2"))
                )
                follow(cluster, users, "5. v2: built, canaried under analysis, promoted",
                       serving("2"), timeout=1500)  # fmt: skip
                cluster.kubectl(
                    "apply", "-f", "-", input=json.dumps(model_deployment(packages, "3"))
                )
                obj = follow(cluster, users, "6. v3 fails one request in five: rolled back by itself",
                             lambda s: s.get("phase") == "RolledBack", timeout=1500)  # fmt: skip
        console.rule("[bold]7. Revision history")
        history = Table("revision", "version", "outcome", "image", "reason")
        for h in obj["status"]["history"]:
            history.add_row(h["revision"], h["version"], h.get("outcome", ""),
                            h.get("image", "").rsplit("/", 1)[-1][:40], h.get("reason", ""))  # fmt: skip
        console.print(history)
        degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
        console.print(f"Degraded: {degraded['message']}")
        answered = Counter(s for _, s in users.answers)
        console.print("Users' answers by status: " + ", ".join(
            f"{'no answer' if s == 0 else s}: {n}" for s, n in sorted(answered.items())))  # fmt: skip
        logs = cluster.kubectl("logs", "-n", release.namespace, "-l",
                               "app.kubernetes.io/name=pitstop", "--tail=-1").stdout  # fmt: skip
        refused = [line for line in logs.splitlines() if "forbidden" in line.lower()]
        console.print(f"operator log: {len(refused)} lines with Forbidden")
        if refused:
            raise SystemExit(
                "the operator was refused by the API server:\n" + "\n".join(refused[:5])
            )
    finally:
        console.print("Giving the host back (the node's pods stop first)…")
        handle.down()
    console.print("Done: the node and the control plane are stopped, the host as it was.")


if __name__ == "__main__":
    main()
