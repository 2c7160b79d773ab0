"""`pitstop promote | abort | retry | undo`: manual gates that work under GitOps.

Each command writes one request into the `pitstop.dev/request` annotation (see
`strategies.requests` for why an annotation survives Argo CD and Flux self-heal), with
`--reason` in it and, in the same patch, `pitstop.dev/requested-by`: the user the API
server says these credentials are (a SelfSubjectReview), which the chart's admission
policy checks. Unless `--no-wait`, it waits until the operator records the request in
`status.lastRequest`, then prints where the rollout stands.
"""

from __future__ import annotations

import time
import uuid

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
) -> None:
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
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        obj = kube.get_model_deployment(namespace, name) or {}
        status = obj.get("status") or {}
        if status.get("lastRequest") == request.id:
            click.echo(f"{status.get('phase', '?')}: {status.get('message', '')}")
            return
        time.sleep(0.5)
    raise click.ClickException(
        "the operator has not handled the request within 60s; is it running?"
    )


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


COMMANDS = (promote, abort, retry, undo)
