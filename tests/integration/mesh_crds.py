"""The real Gateway API and Istio CRDs, installed into the local control plane.

Read at test time from the upstream Go modules (`go mod download`, so from Go's module
cache after the first run) and never copied into this repository: every HTTPRoute and
VirtualService Pitstop writes in the tests is validated by the schemas and CEL rules
the projects ship.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pitstop.devcluster import binaries, testing

# Gateway API v1.4 has RequestMirror `percent` in the standard channel.
GATEWAY_API = ("sigs.k8s.io/gateway-api", "v1.4.1")
ISTIO_API = ("istio.io/api", "v1.28.0")

HTTPROUTES = "httproutes.gateway.networking.k8s.io"
VIRTUALSERVICES = "virtualservices.networking.istio.io"


def module_dir(module: str, version: str) -> Path:
    """The unpacked source of a Go module version, downloaded once into Go's cache."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        env=binaries.go_env(),
        timeout=300,
        check=False,
    )
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Error" in info:
        raise RuntimeError(f"go mod download {module}@{version}: {info.get('Error', done.stderr)}")
    return Path(info["Dir"])


def manifests() -> list[Path]:
    """The CRD files: Gateway API's standard channel and Istio's generated CRDs."""
    gateway = module_dir(*GATEWAY_API) / "config" / "crd" / "standard"
    istio = module_dir(*ISTIO_API) / "kubernetes" / "customresourcedefinitions.gen.yaml"
    return [*sorted(gateway.glob("*.yaml")), istio]


def install(cluster: testing.DevCluster) -> None:
    """Apply the CRDs (idempotent) and wait until the two Pitstop drives are served."""
    for path in manifests():
        cluster.kubectl("apply", "--server-side", "--field-manager=mesh-crds", "-f", str(path))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        f"crd/{HTTPROUTES}", f"crd/{VIRTUALSERVICES}",
    )  # fmt: skip
