"""The node's kaniko image: upstream's layout, and the node's registry in its entrypoint."""

from __future__ import annotations

import json

from pitstop.devcluster import buildimages, nodeconfig


def _instructions(dockerfile: str) -> dict[str, str]:
    joined = dockerfile.replace("\\\n", " ")
    return {line.split()[0]: line.split(None, 1)[1] for line in joined.splitlines() if line}


def test_the_kaniko_image_is_laid_out_as_upstreams() -> None:
    found = _instructions(buildimages.kaniko_dockerfile())
    assert found["FROM"] == "scratch"
    env = dict(pair.split("=", 1) for pair in found["ENV"].split())
    # Where upstream's image keeps its credentials and CAs, which Jobs mount over.
    assert env["DOCKER_CONFIG"] == "/kaniko/.docker/"
    assert env["SSL_CERT_DIR"] == "/kaniko/ssl/certs"


def test_a_jobs_args_follow_the_node_registrys_flags_in_the_entrypoint() -> None:
    entrypoint = json.loads(_instructions(buildimages.kaniko_dockerfile())["ENTRYPOINT"])
    host = nodeconfig.registry_host()
    assert entrypoint[0] == "/kaniko/executor"
    # Plain HTTP for push and pull, and the mirror of docker.io (python:3.11-slim).
    assert set(entrypoint[1:]) == {f"--insecure-registry={host}", f"--registry-mirror={host}"}
