"""What the facade's callers catch: a write refused by the fence, a write on a stale
object, and one readable line for any error of a call to the API."""

from __future__ import annotations

import contextlib
import json

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError


class NotLeader(RuntimeError):
    """This replica may not write: it is not, or no longer surely, the leader."""


class Conflict(RuntimeError):
    """The object changed since it was read (409): read it again and decide again."""


class Forbidden(PermissionError):
    """The API server refused these credentials (403): a person's CLI says so plainly."""


def describe(error: BaseException) -> str:
    """One line for a person: an API error's code and the API server's own message."""
    if isinstance(error, ApiException):
        message = error.reason or ""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(error.body or "{}").get("message") or message
        return f"{error.status} {error.reason}: {message}"
    if isinstance(error, TransportError):
        return f"the API server did not answer: {error}"
    return f"{type(error).__name__}: {error}"


def kind(error: BaseException) -> str:
    """A short, bounded name for what went wrong (a metric label): the API server's
    reason (Forbidden, NotFound, ...), Unreachable, or the exception's class."""
    if isinstance(error, ApiException):
        return str(error.reason or error.status or "ApiException").replace(" ", "")
    if isinstance(error, TransportError):
        return "Unreachable"
    return type(error).__name__
