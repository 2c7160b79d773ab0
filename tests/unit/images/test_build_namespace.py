"""Where builds run: the chart's build namespace, at the least Pod Security level that
admits the enabled builders, and the operator's settings that name it.

Rootless BuildKit needs seccomp and AppArmor `Unconfined` (only `privileged` allows
them); kaniko runs as root (`baseline` allows it, `restricted` does not). That the API
server's PodSecurity admission agrees is checked on the real control plane in
tests/integration/test_builds.py.
"""

from __future__ import annotations

import pytest
from chart import render
from pitstop.images import decision, settings

ENFORCE = "pod-security.kubernetes.io/enforce"


def namespaces(*values: str) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o["metadata"]["labels"] for o in render(*values)
            if o["kind"] == "Namespace"}  # fmt: skip


@pytest.mark.parametrize(
    ("builders", "level"),
    [("{buildkit,kaniko}", "privileged"), ("{buildkit}", "privileged"), ("{kaniko}", "baseline")],
)
def test_the_build_namespace_enforces_the_least_level_its_builders_need(
    builders: str, level: str
) -> None:
    found = namespaces("--set", f"build.builders={builders}")
    assert found["pitstop-builds"][ENFORCE] == level


def test_the_build_namespace_by_default_and_when_it_exists_already() -> None:
    assert namespaces()["pitstop-builds"][ENFORCE] == "privileged"
    assert set(namespaces("--set", "build.namespace=ml-builds")) == {"ml-builds"}
    assert namespaces("--set", "build.createNamespace=false") == {}


def test_settings_read_the_build_namespace_builders_and_poll_from_the_environment() -> None:
    env = {settings.NAMESPACE: "ml-builds", settings.BUILDERS: "kaniko", settings.POLL: "1.5"}
    assert settings.build_settings(env).namespace == "ml-builds"
    policy = settings.policy(env)
    assert (policy.builders, policy.poll_seconds) == (frozenset({"kaniko"}), 1.5)
    # Started by hand (tests, `pitstop dev`): the chart's defaults.
    assert settings.build_settings({}).namespace == "pitstop-builds"
    assert settings.policy({}).builders == decision.BUILDERS == {"buildkit", "kaniko"}


def test_the_operator_is_told_where_builds_run() -> None:
    values = ("--set", "build.namespace=ml-builds", "--set", "build.builders={kaniko}")
    [deployment] = [o for o in render(*values) if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    assert settings.build_settings(env).namespace == "ml-builds"
    assert settings.policy(env).builders == {"kaniko"}
