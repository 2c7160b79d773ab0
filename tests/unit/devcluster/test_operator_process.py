"""Reading the operator's log: which refusals are RBAC's, which a restarting API server's."""

from __future__ import annotations

from datetime import datetime

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
