"""Below the generated client: a timeout on every request, and a fence before writes.

Done on the REST client that every generated and dynamic call goes through: the
generated methods take a `_request_timeout` per call, and the dynamic client's
discovery requests take none, so only here is no call left unbounded and no write
unfenced. The fence (the leader election's, see `pitstop.leadership`) is asked as
late as possible, right before a write leaves the process; it raises
`errors.NotLeader` when this replica may no longer write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s

from pitstop import telemetry

# Seconds any API call may take; writes may be held to less (see `KubeClient`).
TIMEOUT_SECONDS = 10.0
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bound(
    api: k8s.ApiClient,
    timeout: float,
    write_timeout: float,
    fence: Callable[[], None] | None = None,
) -> None:
    """Give every request of `api` a timeout (urllib3 may retry a read that timed out,
    so a call takes at most a few of them), and pass each write through `fence` first."""
    rest = api.rest_client
    send = rest.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        write = method.upper() in WRITES
        if write and fence is not None:
            fence()
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = write_timeout if write else timeout
        started, code = time.monotonic(), 0  # 0: no answer
        try:
            answer = send(method, url, *args, **kwargs)
            code = getattr(answer, "status", 0) or 0
            return answer
        except k8s.ApiException as refused:
            code = refused.status or 0
            raise
        finally:
            telemetry.api_request(method, url, code, time.monotonic() - started)

    rest.request = request  # type: ignore[method-assign]


def as_parsed(_client: Any, parsed: dict[str, Any]) -> dict[str, Any]:
    """A dynamic client call's answer as JSON parsed it (pass as its `serializer`). Its
    default wraps every nested field in a `ResourceInstance`, in Python, only for
    `.to_dict()` to unwrap it again: for applies' answers that was about a twentieth of
    the operator's CPU on a fleet coming up. (Not the client's default for every call:
    its own discovery reads those wrappers.)"""
    return parsed
