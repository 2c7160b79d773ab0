"""Reading the operator's log: which refusals are RBAC's, which a restarting API server's."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path

import yaml
from pitstop.devcluster import cluster, operator_process

LOG = """\
[2026-11-29 11:43:10,000] kopf.objects         [INFO    ] fine
[2026-11-29 11:43:19,500] kopf._cogs.clients.w [ERROR   ] GET /jobs -> APIForbiddenError('Forbidden')
[2026-11-29 11:43:21,200] kopf._cogs.clients.w [ERROR   ] GET /crds -> APIForbiddenError('Forbidden')
Traceback (most recent call last):
kubernetes.client.exceptions.ApiException: (403) Reason: Forbidden
[2026-11-29 11:43:30,000] pitstop.reconcile    [ERROR   ] (403) Reason: Forbidden
"""
RESTART = cluster.Outage(
    datetime(2026, 11, 29, 11, 43, 15), datetime(2026, 11, 29, 11, 43, 20, 500000)
)


def test_a_refusal_while_the_api_server_restarted_is_not_rbacs() -> None:
    rbac, restarting = operator_process.refusals(LOG, [RESTART])

    # Up to a second after it was ready: the answer came before, its line a moment after.
    assert [line[12:24] for line in restarting[:2]] == ["11:43:19,500", "11:43:21,200"]
    assert restarting[2].startswith("kubernetes.client.exceptions")  # with the line before
    assert rbac == [
        "[2026-11-29 11:43:30,000] pitstop.reconcile    [ERROR   ] (403) Reason: Forbidden"
    ]


def test_without_outages_every_refusal_is_rbacs() -> None:
    rbac, restarting = operator_process.refusals(LOG)

    assert (len(rbac), restarting) == (4, [])


# --- warm starts: `pitstop` forked from an interpreter that imported it already ---------


def test_a_warm_start_runs_the_pitstop_command_into_its_log(tmp_path: Path) -> None:
    log = tmp_path / "pitstop.log"
    child = operator_process._WarmProcess(["crd"], dict(os.environ), log)
    assert child.wait(timeout=60) == 0
    assert "kind: CustomResourceDefinition" in log.read_text()

    refused = operator_process._WarmProcess(["run", "--metrics-address=nowhere"], {}, log)
    assert refused.wait(timeout=60) == 2  # click's usage error, as from the shell
    assert "--metrics-address 'nowhere': expected host:port" in log.read_text()


def test_a_warm_operator_uses_the_kubeconfig_it_was_started_with_and_dies_by_sigkill(
    tmp_path: Path,
) -> None:
    """The kubernetes client reads $KUBECONFIG once, at import, in the fork server:
    the child must use its own. Here it points at a port nobody serves."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))  # fmt: skip
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    child = operator_process._WarmProcess(["run", "--liveness=", "--metrics-address="], env, log)
    try:
        deadline = time.monotonic() + 60
        # urllib3 names it `host='127.0.0.1', port=9`; aiohttp `127.0.0.1:9`.
        while not re.search(r"127\.0\.0\.1(:|', port=)9\b", log.read_text(errors="replace")):
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        child.kill()
    assert child.wait(timeout=30) == -signal.SIGKILL
