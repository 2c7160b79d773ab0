"""`pitstop promote | abort | retry | undo | decommission`: manual gates that work under
GitOps.

Each command writes one request into the `pitstop.dev/request` annotation (see
`strategies.requests` for why an annotation survives Argo CD and Flux self-heal), with
`--reason` in it and, in the same patch, `pitstop.dev/requested-by`: the user the API
server says these credentials are (a SelfSubjectReview), which the chart's admission
policy checks. Unless `--no-wait`, it waits until the operator records the request in
`status.lastRequest`, then prints where the rollout stands. `decommission` then waits
until the operator says every revision is gone, and deletes the ModelDeployment with
the user's credentials (unless `--keep-object`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import click

from pitstop.k8s import client
from pitstop.strategies import requests

namespace_option = click.option(
    "--namespace", "-n", default=None, help="Namespace (default: the kubeconfig context's)."
)
wait_option = click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait for the operator."
)
reason_option = click.option(
    "--reason",
    default="",
    help=f"Why, for the history (at most {requests.MAX_REASON} characters).",
)


def _send(
    action: requests.Action,
    name: str,
    namespace: str | None,
    wait: bool,
    reason: str,
    revision: str | None = None,
) -> tuple[client.KubeClient, str, dict[str, Any]]:
    """Write the request; unless not `wait`, return the status that handled it."""
    if len(reason) > requests.MAX_REASON:
        raise click.BadParameter(f"at most {requests.MAX_REASON} characters", param_hint="--reason")
    kube = client.connect()
    namespace = namespace or client.current_namespace()
    if kube.get_model_deployment(namespace, name) is None:
        raise click.ClickException(f"ModelDeployment {namespace}/{name} not found")
    request = requests.Request(action, uuid.uuid4().hex[:12], revision, reason)
    user = kube.whoami()
    kube.annotate_model_deployment(namespace, name, request.annotations(user))
    click.echo(f"{action} requested for {namespace}/{name} by {user} (request {request.id})")
    if not wait:
        return kube, namespace, {}
    status = _await(
        kube, namespace, name, lambda s: s.get("lastRequest") == request.id,
        "the operator has not handled the request within 60s; is it running?",
    )  # fmt: skip
    click.echo(f"{status.get('phase', '?')}: {status.get('message', '')}")
    return kube, namespace, status


def _await(
    kube: client.KubeClient,
    namespace: str,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    failure: str,
    seconds: float = 60,
) -> dict[str, Any]:
    """The ModelDeployment's status once `done` says so, polled until a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        obj = kube.get_model_deployment(namespace, name) or {}
        status: dict[str, Any] = obj.get("status") or {}
        if done(status):
            return status
        time.sleep(0.5)
    raise click.ClickException(failure)


@click.command()
@click.argument("name")
@namespace_option
@wait_option
@reason_option
def promote(name: str, namespace: str | None, wait: bool, reason: str) -> None:
    """Continue a paused rollout: next canary step, blue/green switch, shadow promotion."""
    _send("promote", name, namespace, wait, reason)


@click.command()
@click.argument("name")
@namespace_option
@wait_option
@reason_option
def abort(name: str, namespace: str | None, wait: bool, reason: str) -> None:
    """Stop the rollout: all traffic back to stable; the candidate is not retried."""
    _send("abort", name, namespace, wait, reason)


@click.command()
@click.argument("name")
@namespace_option
@wait_option
@reason_option
def retry(name: str, namespace: str | None, wait: bool, reason: str) -> None:
    """Roll out again a revision that was rolled back or aborted."""
    _send("retry", name, namespace, wait, reason)


@click.command()
@click.argument("name")
@click.option("--to-revision", "revision", required=True, help="A revision from status.history.")
@namespace_option
@wait_option
@reason_option
def undo(name: str, revision: str, namespace: str | None, wait: bool, reason: str) -> None:
    """Go back to a retained revision now; the spec's revision waits until the spec changes."""
    _send("undo", name, namespace, wait, reason, revision)


def _drained(status: dict[str, Any]) -> bool:
    """Decommissioned, and every revision's Deployment gone (the operator says so)."""
    done = status.get("decommissioned") or {}
    return status.get("phase") == "Decommissioned" and bool(done.get("completedAt"))


@click.command()
@click.argument("name")
@namespace_option
@reason_option
@click.option(
    "--keep-object",
    is_flag=True,
    help="Leave the ModelDeployment in place, decommissioned (GitOps: remove it from Git).",
)
def decommission(name: str, namespace: str | None, reason: str, keep_object: bool) -> None:
    """Retire NAME for good: traffic off, every revision's pods and Services deleted, the
    archive kept (`pitstop history`); then delete the ModelDeployment.

    Nothing comes back while it stays, whatever its spec says. Under GitOps use
    --keep-object and remove it from Git, or Argo CD / Flux would create it again.
    """
    kube, namespace, _ = _send("decommission", name, namespace, True, reason)
    status = _await(
        kube, namespace, name, _drained,
        "the operator has not removed every revision within 120s; `pitstop status` says why",
        seconds=120,
    )  # fmt: skip
    click.echo(f"{status.get('phase')}: {status.get('message', '')}")
    if keep_object:
        click.echo(
            f"ModelDeployment {namespace}/{name} kept, decommissioned. Under GitOps, remove it "
            "from Git: the archive stays after it goes."
        )
        return
    kube.delete_model_deployment(namespace, name)
    click.echo(
        f"ModelDeployment {namespace}/{name} deleted; `pitstop history {name}` still shows "
        "its revisions. Under GitOps, remove it from Git too, or it is created again."
    )


COMMANDS = (promote, abort, retry, undo, decommission)
