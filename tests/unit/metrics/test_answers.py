"""A failed call to a model, Prometheus or a webhook is said in one line that names who
answered and what, never httpx's two-line text with the query string and a link."""

from __future__ import annotations

import httpx
import pytest
from pitstop.metrics import answers


def _status_error(url: str, code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", url)
    response = httpx.Response(code, request=request)
    return httpx.HTTPStatusError("unused", request=request, response=response)


def test_an_error_status_names_the_url_without_its_query_and_the_code() -> None:
    error = _status_error("http://prom:9090/api/v1/query?query=sum%28rate%28x", 503)
    said = answers.describe(error)
    assert said == "http://prom:9090/api/v1/query answered 503 Service Unavailable"
    # what httpx itself says, for contrast: two lines, the query string and a link
    theirs = _raised(error.response)
    assert "\n" in theirs
    assert "query=" in theirs
    assert "developer.mozilla.org" in theirs


def _raised(response: httpx.Response) -> str:
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as error:
        return str(error)
    raise AssertionError("an error status must raise")


def test_a_secret_in_the_query_string_is_not_repeated() -> None:
    said = answers.describe(_status_error("https://hooks.example/judge?token=s3cr3t", 401))
    assert "s3cr3t" not in said
    assert said == "https://hooks.example/judge answered 401 Unauthorized"


@pytest.mark.parametrize(
    ("error", "url", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "http://10.0.0.7:3000",
         "http://10.0.0.7:3000: ConnectError: [Errno 111] Connection refused"),
        (httpx.ReadTimeout("timed out"), "", "ReadTimeout: timed out"),
        (ValueError("the query returned 3 series; aggregate it"), "",
         "the query returned 3 series; aggregate it"),
        (KeyError("data"), "", "KeyError: 'data'"),
        (httpx.RemoteProtocolError(""), "", "RemoteProtocolError"),
        (RuntimeError("first line\nsecond line"), "", "RuntimeError: first line"),
    ],
)  # fmt: skip
def test_other_errors_say_their_kind_and_first_line(
    error: Exception, url: str, expected: str
) -> None:
    assert answers.describe(error, url) == expected
