"""The bento the template builds: image contract (port, environment, files)."""

from __future__ import annotations

import pytest
import yaml
from conftest import Cluster

pytestmark = pytest.mark.serving


def test_the_bento_carries_the_package_and_its_configuration(cluster: Cluster) -> None:
    name, version = cluster.bentos["fraud:1"].split(":")
    folder = cluster.home / "bentos" / name / version
    info = yaml.safe_load((folder / "bento.yaml").read_text())
    assert [model["tag"] for model in info["models"]] == ["fraud:1"]
    envs = {env["name"]: env["value"] for env in info["envs"]}
    assert envs["PITSTOP_MODEL"] == "fraud:1"
    dockerfile = (folder / "env" / "docker" / "Dockerfile").read_text()
    assert "EXPOSE 3000" in dockerfile
    requirements = (folder / "env" / "python" / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements
    assert (folder / "src" / "pitstop" / "packaging" / "drift.py").is_file()
