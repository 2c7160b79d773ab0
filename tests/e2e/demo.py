"""`make demo`: the whole Pitstop story on a local control plane with real model servers.

v1 deploys; v2, a better model, goes through the canary steps under analysis and is
promoted; v3, a model that fails one request in five, is rolled back by itself. A live
view shows the rollout as the API holds it and the traffic users really got; the demo
ends with the revision history.

It runs the same parts as tests/e2e: the real control plane (kube-apiserver, etcd,
controller-manager, scheduler, KWOK), the chart installed with `helm install`, the real
operator process on the chart's ServiceAccount (its RBAC, nothing more; the demo fails
if the API server refused it anything), real `bentoml serve`
model servers started for each pod on the address the pod reports (the kubelet
emulator), and steady user traffic that follows what the operator wrote (the gateway
emulator). Nothing is mocked but those two, which cannot exist on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO / "tests" / "serving")]

from harness import deployment, gateway, kubelet, listing, models  # noqa: E402
from pitstop import view  # noqa: E402
from pitstop.devcluster import cluster as devcluster  # noqa: E402
from pitstop.devcluster import install, testing  # noqa: E402
from pitstop.devcluster.operator_process import OperatorProcess  # noqa: E402
from rich.console import Console, Group  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402

STATE = REPO / ".dev" / "demo"
NAMESPACE = "demo"
console = Console()

CANARY = {
    "type": "Canary",
    "canary": {"steps": [{"weight": 34, "pause": "3m"}, {"weight": 50, "pause": "3m"}]},
}
# The README's example limits. The demo's users send 50 requests/s, too few for a quick
# verdict on limits this tight, so Pitstop adds generated load (analysis.load) while it
# analyses, as one would for a quiet model.
ANALYSIS = {
    "minRequests": 50,
    "load": {"requestsPerSecond": 40},
    "metrics": [
        {"name": "errors", "builtin": "errorRate", "maxAboveStable": 0.01},
        {"name": "p99", "builtin": "latencyP99", "maxRatioToStable": 1.5},
        {"name": "drift", "builtin": "drift", "max": 0.2},
    ],
}


def build_models(home: Path) -> dict[str, str]:
    console.print("  training, packaging and building the models (v1 good, v2 better, v3 flaky)…")
    shutil.rmtree(home, ignore_errors=True)  # a fresh store: a bento tag is built only once
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO / "tests" / "serving")])}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "harness.models"], cwd=HERE, env=env,
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"building the models failed:\n{done.stderr[-3000:]}")
    bentos: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return bentos


def traffic_table(load: gateway.Gateway, since: float) -> Table:
    table = Table("version", "answered (last 5 s)", "errors", "share now", title="users' traffic",
                  title_justify="left")  # fmt: skip
    recent = [r for r in load.answered(since=max(since, time.monotonic() - 5))]
    counts = Counter(r.version for r in recent)
    errors = Counter(r.version for r in recent if r.status >= 500)
    for version in sorted(v for v in counts if v):
        table.add_row(f"v{version}", str(counts[version]), str(errors[version]),
                      f"{load.share_now(version):.0f}%")  # fmt: skip
    return table


def follow(
    md: deployment.Deployment, load: gateway.Gateway, title: str, done: Any
) -> dict[str, Any]:
    console.rule(f"[bold]{title}")
    started = time.monotonic()
    deadline = started + 420
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            obj = md.get("md", md.name)
            live.update(Group(view.render(obj), traffic_table(load, started)))
            status = obj.get("status", {})
            if done(status) and status.get("observedGeneration") == obj["metadata"]["generation"]:
                return obj
            if time.monotonic() > deadline:
                raise SystemExit(f"{title}: not finished after 420 s; see {STATE}/operator.log")
            time.sleep(0.5)


def main() -> None:
    console.rule("[bold]Pitstop: swap the model while the car keeps running")
    console.print(
        "1. A local control plane: kube-apiserver, etcd, controller-manager, scheduler, KWOK"
    )
    handle = devcluster.Cluster(STATE / "cluster", pod_cidr="127.199.0.0/16", probe_readiness=True,
                                log=lambda m: console.print(f"  {m}"))  # fmt: skip
    cluster = testing.DevCluster(handle.up())
    try:
        # Installed as a user installs it; the operator (run outside the cluster, to
        # see its log) authenticates as the chart's ServiceAccount, with its RBAC.
        release = install.install(cluster, "pitstop", "pitstop-system")
        cluster.kubectl("wait", "--for=condition=Established", "crd/modeldeployments.pitstop.dev")
        cluster.create_namespace(NAMESPACE, pod_security="restricted")
        home = STATE / "bentoml"
        bentos = build_models(home)
        console.print(
            "2. The chart (helm install), the operator on its ServiceAccount, real model "
            "servers for every pod, user traffic"
        )
        kubeconfig = install.release_kubeconfig(cluster, release, STATE / "operator.kubeconfig")
        (STATE / "operator.log").unlink(missing_ok=True)
        operator = OperatorProcess(kubeconfig, STATE / "operator.log", warm=False)
        operator.start()
        images = {models.image(v): kubelet.Image(b, {"PITSTOP_MIRROR_CONFIG": "/etc/pitstop/mirror/mirror.json",
                                                     "PITSTOP_MODEL": f"{models.NAME}:{v}"})
                  for v, b in bentos.items()}  # fmt: skip
        host_env = {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        md = deployment.Deployment(cluster, NAMESPACE)
        shared = listing.Listing(cluster, NAMESPACE)
        with (
            kubelet.Kubelet(
                cluster, NAMESPACE, images, STATE / "pods", host_env=host_env, listing=shared
            ),
            gateway.Gateway(
                cluster, NAMESPACE, "fraud", models.rows(), rps=50, listing=shared
            ) as load,
        ):
            md.apply(models.GOOD, CANARY, replicas=2, analysis=ANALYSIS)
            follow(md, load, "3. v1 deploys", lambda s: s.get("phase") == "Healthy")
            md.apply(models.BETTER, CANARY, replicas=2, analysis=ANALYSIS)
            follow(md, load, "4. v2, a better model: canary steps under analysis, then promoted",
                   lambda s: s.get("phase") == "Healthy"
                   and (s.get("stable") or {}).get("version") == models.BETTER)  # fmt: skip
            md.apply(models.FLAKY, CANARY, replicas=2, analysis=ANALYSIS)
            obj = follow(md, load, "5. v3 fails one request in five: rolled back by itself",
                         lambda s: s.get("phase") == "RolledBack")  # fmt: skip
            answered = Counter(r.version for r in load.answered())
        console.rule("[bold]6. Revision history")
        history = Table("revision", "version", "outcome", "started", "ended", "reason")
        for h in obj["status"]["history"]:
            history.add_row(h["revision"], h["version"], h.get("outcome", ""), h.get("startedAt", ""),
                            h.get("endedAt", "-"), h.get("reason", ""))  # fmt: skip
        console.print(history)
        degraded = next(c for c in obj["status"]["conditions"] if c["type"] == "Degraded")
        console.print(f"Degraded: {degraded['message']}")
        console.print("User requests answered per version: "
                      + ", ".join(f"v{v}: {n}" for v, n in sorted((v, n) for v, n in answered.items() if v)))  # fmt: skip
        operator.stop()
        refused = operator.forbidden()
        console.print(f"operator log: {len(refused)} lines with Forbidden")
        if refused:
            raise SystemExit(
                "the operator was refused by the API server:\n" + "\n".join(refused[:5])
            )
    finally:
        handle.down()
    console.print("Done: the control plane is stopped. `make test` runs the whole suite.")


if __name__ == "__main__":
    main()
