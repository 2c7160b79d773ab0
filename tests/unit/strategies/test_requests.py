from __future__ import annotations

import pytest
from pitstop.strategies import requests
from pitstop.strategies.requests import Request


def test_round_trip() -> None:
    request = Request("undo", "abc", "1234567890")
    assert requests.parse({requests.ANNOTATION: request.to_annotation()}) == request


def test_no_annotation_is_no_request() -> None:
    assert requests.parse({"other": "x"}) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("promote", "not JSON"), ("[1]", "JSON object"), ('{"action": "jump", "id": "1"}', "needs an action"),
     ('{"action": "promote"}', "needs an action"), ('{"action": "undo", "id": "1"}', "revision")],
)  # fmt: skip
def test_malformed_requests_say_what_is_wrong(text: str, fragment: str) -> None:
    message = requests.parse({requests.ANNOTATION: text})
    assert isinstance(message, str)
    assert fragment in message
