"""A failed HTTP call to a model, Prometheus or a webhook, said in one line.

These sentences land where users look — a metric's reason in the analysis status, the
`Analysing` condition, the smoke test's message, the operator's log. httpx's own text
for an error status spans two lines: the whole URL with its query string (for the
prometheus provider, the URL-encoded PromQL expression), then a link to MDN's page on
the status code. What a person needs is who answered, and what — and, where the server
said why (Prometheus does, in its JSON), its own words.
"""

from __future__ import annotations

import httpx


def refused(answer: httpx.Response) -> str:
    """`<url> answered <code> <reason>` (the URL without its query string)."""
    url = answer.request.url.copy_with(query=None)
    return f"{url} answered {answer.status_code} {answer.reason_phrase}".rstrip()


def describe(error: Exception, url: str = "") -> str:
    """One line for a person. An error status says itself with `refused`; a plain
    ValueError is a sentence of Pitstop's own; any other error (refused connection,
    timeout, a body that is not what was asked) says its kind and the first line of its
    text. After `url` when the caller knows it."""
    if isinstance(error, httpx.HTTPStatusError):
        return refused(error.response)
    lines = str(error).strip().splitlines()
    if type(error) is ValueError and lines:  # a sentence of Pitstop's own
        text = lines[0]
    else:
        text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return f"{url}: {text}" if url else text
