"""`pitstop demo`: the story of Pitstop on a local control plane, start to finish.

It starts (or reuses) the local control plane, installs the CRD, runs the real
operator as a child process, deploys model version 1 from a prebuilt image, rolls out
version 2, and prints the revision history. Everything it does is what a user would
do with kubectl; the live view reads only what the API holds.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from pitstop.devcluster import cli as devcluster_cli
from pitstop.devcluster import cluster
from pitstop.devcluster.operator_process import OperatorProcess

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "demo"
NAME = "fraud"
console = Console()


class Kubectl:
    def __init__(self, info: cluster.ClusterInfo) -> None:
        self.base = [str(info.bin_dir / "kubectl"), f"--kubeconfig={info.kubeconfig}"]

    def __call__(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run([*self.base, *args], input=input, capture_output=True, text=True)
        if done.returncode != 0:
            raise click.ClickException(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout


def _model(version: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "model": {"name": "fraud", "version": version},
                "image": f"registry.example.com/ml/fraud:{version}",
                "serving": {"replicas": 2},
            },
        }
    )


def _view(obj: dict[str, Any], title: str) -> Table:
    status = obj.get("status", {})
    table = Table(title=title, title_justify="left")
    for column in ("phase", "stable", "candidate", "traffic", "message"):
        table.add_column(column)
    stable, candidate = status.get("stable") or {}, status.get("candidate") or {}
    table.add_row(
        status.get("phase", "-"),
        f"v{stable['version']} ({stable['revision']})" if stable else "-",
        f"v{candidate['version']} ({candidate['revision']})" if candidate else "-",
        status.get("traffic", {}).get("summary", "-"),
        status.get("message", ""),
    )
    return table


def _follow(kubectl: Kubectl, title: str, version: str, timeout: float = 120) -> dict[str, Any]:
    """Show the ModelDeployment live until `version` serves, healthy."""
    deadline = time.monotonic() + timeout
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            obj = json.loads(kubectl("get", "md", NAME, "-n", NAMESPACE, "-o", "json"))
            live.update(_view(obj, title))
            status = obj.get("status", {})
            done = (
                status.get("phase") == "Healthy"
                and status.get("stable", {}).get("version") == version
            )
            if done and status.get("observedGeneration") == obj["metadata"]["generation"]:
                return obj  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise click.ClickException(f"v{version} did not become Healthy in {timeout:.0f}s")
            time.sleep(0.5)


@click.command()
def demo() -> None:
    """Deploy a model, roll out a new version, and show the history, on a local cluster."""
    state_dir = devcluster_cli.default_state_dir()
    console.rule("[bold]1. A local control plane (kube-apiserver, etcd, KWOK)")
    info = cluster.Cluster(state_dir, log=lambda m: console.print(f"  {m}")).up()
    kubectl = Kubectl(info)
    kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/modeldeployments.pitstop.dev")
    console.print(f"  API server {info.server}; CRD modeldeployments.pitstop.dev installed")

    console.rule("[bold]2. The operator")
    log_path = state_dir / "operator.log"
    operator = OperatorProcess(info.kubeconfig, log_path)
    operator.start()
    console.print(f"  pitstop run, logs in {log_path}")
    try:
        kubectl("apply", "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))  # fmt: skip
        console.rule("[bold]3. Version 1 from a prebuilt image")
        kubectl("apply", "-f", "-", input=_model("1"))
        _follow(kubectl, "kubectl get md fraud  (v1)", "1")
        console.rule("[bold]4. Version 2: a new revision replaces the stable one")
        kubectl("apply", "-f", "-", input=_model("2"))
        obj = _follow(kubectl, "kubectl get md fraud  (v2)", "2")
        console.rule("[bold]5. Revision history")
        history = Table("revision", "version", "outcome", "started", "ended")
        for entry in obj["status"]["history"]:
            history.add_row(entry["revision"], entry["version"], entry.get("outcome", ""),
                            entry.get("startedAt", ""), entry.get("endedAt", "-"))  # fmt: skip
        console.print(history)
        console.print(kubectl("get", "md,deployments,services", "-n", NAMESPACE))
    finally:
        operator.stop()
    console.print(
        "The control plane keeps running: `eval $(.venv/bin/pitstop dev env)` to explore, "
        "`.venv/bin/pitstop dev down` to stop it."
    )
