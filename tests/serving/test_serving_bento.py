"""The bento the template builds: image contract (port, environment, files)."""

from __future__ import annotations

import pytest
import yaml
from serving_cluster import Cluster

pytestmark = pytest.mark.serving


def test_the_bento_carries_the_package_and_its_configuration(cluster: Cluster) -> None:
    name, version = cluster.bentos["fraud:1"].split(":")
    folder = cluster.home / "bentos" / name / version
    info = yaml.safe_load((folder / "bento.yaml").read_text())
    assert [model["tag"] for model in info["models"]] == ["fraud:1"]
    # The image finds its package as the bento's one model: a per-package ENV would sit
    # ahead of the dependency layers in the Dockerfile and split the build cache.
    envs = {env["name"]: env["value"] for env in info["envs"]}
    assert "PITSTOP_MODEL" not in envs
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    assert "fraud:1" not in dockerfile
    assert "EXPOSE 3000" in dockerfile
    requirements = (folder / "env" / "python" / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements
    assert (folder / "src" / "pitstop" / "packaging" / "drift.py").is_file()
