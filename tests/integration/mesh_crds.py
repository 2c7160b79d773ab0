"""The real Gateway API and Istio CRDs, installed into the local control plane.

Read at test time from the upstream Go modules (`go mod download`, so from Go's module
cache after the first run) and never copied into this repository: every HTTPRoute and
VirtualService Pitstop writes in the tests is validated by the schemas and CEL rules
the projects ship.
"""

from __future__ import annotations

from pathlib import Path

from pitstop.devcluster import binaries, gatewayplane, testing

ISTIO_API = ("istio.io/api", "v1.28.0")

HTTPROUTES = "httproutes.gateway.networking.k8s.io"
VIRTUALSERVICES = "virtualservices.networking.istio.io"


def manifests() -> list[Path]:
    """The CRD files: Gateway API's standard channel and Istio's generated CRDs."""
    istio = Path(binaries.download(*ISTIO_API)["Dir"]) / "kubernetes"
    return [*gatewayplane.crd_manifests(), istio / "customresourcedefinitions.gen.yaml"]


def install(cluster: testing.DevCluster) -> None:
    """Apply the CRDs (idempotent) and wait until the two Pitstop drives are served."""
    for path in manifests():
        cluster.kubectl("apply", "--server-side", "--field-manager=mesh-crds", "-f", str(path))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        f"crd/{HTTPROUTES}", f"crd/{VIRTUALSERVICES}",
    )  # fmt: skip
