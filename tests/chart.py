"""Render the chart with the project's own helm (no cluster), for unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pitstop.devcluster import binaries

CHART = Path(__file__).resolve().parents[1] / "charts" / "pitstop"
RELEASE_NAMESPACE = "pitstop-system"


def render(*values: str) -> list[dict[str, Any]]:
    """The chart's objects for `helm template` arguments `values` (--set a=b, ...)."""
    helm = binaries.bin_dir() / "helm"
    if not helm.exists():
        pytest.skip(f"no helm in {helm.parent}: run `make binaries` to render the chart")
    args = [str(helm), "template", "pitstop", str(CHART), "--namespace", RELEASE_NAMESPACE,
            "--kube-version", binaries.KUBERNETES_VERSION, *values]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
