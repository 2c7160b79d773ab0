"""`pitstop_serving.feedback` without a server: outcome checks, the log's bookkeeping,
merging peers' answers, answer statuses, and the log's memory per entry."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import tracemalloc
from typing import Any

import pytest
from pitstop.packaging.bento import default_template

sys.path.insert(0, str(default_template()))
from pitstop_serving import feedback

LABELS = feedback.Outcomes("labels", ["fraud", "ok"])
VALUES = feedback.Outcomes("values", None)


@pytest.mark.parametrize(
    ("kind", "classes", "given", "expected"),
    [
        ("labels", ["fraud", "ok"], "ok", "ok"),
        ("probabilities", ["fraud", "ok"], "fraud", "fraud"),
        ("labels", [0, 1], 1, 1),
        ("labels", [0.0, 1.0], 1, 1.0),  # a float class takes the JSON integer
        ("labels", [False, True], True, True),
        ("values", None, 3, 3.0),
        ("values", None, -2.5, -2.5),
    ],
)
def test_outcomes_the_model_can_have(
    kind: str, classes: list[Any] | None, given: Any, expected: Any
) -> None:
    checked = feedback.Outcomes(kind, classes).check(given)
    assert checked == expected
    assert type(checked) is type(expected)


@pytest.mark.parametrize(
    ("kind", "classes", "given", "problem"),
    [
        ("labels", ["fraud", "ok"], "maybe", '"maybe" is not one of the model\'s classes'),
        ("labels", ["fraud", "ok"], 1, "1 is not one of"),
        ("labels", [0, 1], True, "true is not one of"),  # True == 1, but not a class here
        ("labels", [0, 1], 1.0, "1.0 is not one of"),
        ("labels", [0, 1], [1], "[1] is not one of"),
        ("labels", [False, True], 1, "1 is not one of"),
        ("values", None, "12", '"12" is not a number'),
        ("values", None, True, "true is not a number"),
        ("values", None, None, "null is not a number"),
        ("values", None, float("nan"), "not a finite number"),
        ("values", None, 10**400, "not a finite number"),
    ],
)
def test_outcomes_the_model_cannot_have(
    kind: str, classes: list[Any] | None, given: Any, problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        feedback.Outcomes(kind, classes).check(given)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[" * 100_000, 400, "not valid JSON"),  # too deep: refused, not a crash
        (b'["a"]', 422, "must be a JSON object"),
        (b'{"feedback": []}', 422, "feedback: must be a non-empty array"),
        (b'{"feedback": [], "x": 1}', 422, "x: unknown field"),
        (json.dumps({"feedback": [{}] * 1001}).encode(), 413, "at most 1000 items"),
    ],
)
def test_bodies_refused_as_a_whole(body: bytes, status: int, message: str) -> None:
    with pytest.raises(feedback.Refused) as refused:
        feedback.parse(body, LABELS)
    assert refused.value.status == status
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ("nope", "", "an item must be an object"),
        ({"outcomes": ["ok"]}, "request_id", "non-empty string"),
        ({"request_id": 7, "outcomes": ["ok"]}, "request_id", "non-empty string"),
        ({"request_id": "x" * 129, "outcomes": ["ok"]}, "request_id", "longer than 128"),
        ({"request_id": "a"}, "outcomes", "non-empty array"),
        ({"request_id": "a", "outcomes": "ok"}, "outcomes", "non-empty array"),
        ({"request_id": "a", "outcomes": ["ok", "no"]}, "outcomes[1]", '"no" is not one'),
        ({"request_id": "a", "outcome": 0}, "outcome", "0 is not one"),
        ({"request_id": "a", "outcome": "ok", "outcomes": ["ok"]}, "outcome", "not both"),
        ({"request_id": "a", "outcome": "ok", "when": 1}, "when", "unknown field"),
    ],
)
def test_items_refused_name_their_field(item: Any, field: str, message: str) -> None:
    request = feedback.parse(json.dumps({"feedback": [item]}).encode(), LABELS)
    (result,) = request.items
    assert isinstance(result, feedback.Result)
    assert (result.status, result.field) == ("invalid", field)
    assert message in result.message
    status, body = feedback.answer(request, [result])
    assert status == 422
    assert json.loads(body)["error"].startswith(f"feedback[0].{field}" if field else "feedback[0]")


def post(log: feedback.Log, *items: dict[str, Any]) -> list[tuple[str, str]]:
    request = feedback.parse(json.dumps({"feedback": list(items)}).encode(), log.outcomes)
    return [(r.status, r.field) for r in log.apply(request)]


def test_outcomes_count_once_against_the_logged_predictions() -> None:
    log = feedback.Log(10, LABELS)
    log.record(b"r1", ["ok", "fraud", "ok"])
    log.record(b"r2", ["ok"])
    assert post(
        log,
        {"request_id": "r1", "outcomes": ["ok", "ok", "fraud"]},
        {"request_id": "r2", "outcome": "ok"},
        {"request_id": "r2", "outcome": "fraud"},  # the same id again in one batch
        {"request_id": "r3", "outcome": "ok"},
        {"request_id": "r1", "outcomes": ["ok", "ok", "ok"]},
    ) == [
        ("counted", ""),
        ("counted", ""),
        ("duplicate", "request_id"),
        ("unknown", "request_id"),
        ("duplicate", "request_id"),
    ]
    assert (log.primary.rows, log.primary.correct) == (4, 2)
    assert log.primary.by_class == {"ok": [2, 1], "fraud": [0, 1]}
    assert (log.shadow.rows, log.rows_held) == (0, 0)
    assert len(log) == 2  # counted ids stay, as markers, so repeats are duplicates


def test_outcomes_for_another_number_of_rows_are_invalid_and_not_counted() -> None:
    log = feedback.Log(10, LABELS)
    log.record(b"r1", ["ok", "ok"])
    assert post(log, {"request_id": "r1", "outcome": "ok"}) == [("invalid", "outcome")]
    assert post(log, {"request_id": "r1", "outcomes": ["ok"] * 3}) == [("invalid", "outcomes")]
    assert log.primary.rows == 0
    assert post(log, {"request_id": "r1", "outcomes": ["ok", "fraud"]}) == [("counted", "")]


def test_regression_errors_are_summed() -> None:
    log = feedback.Log(10, VALUES)
    log.record(b"r1", [10.0, 20.0])
    assert post(log, {"request_id": "r1", "outcomes": [12, 19.5]}) == [("counted", "")]
    assert log.primary.summary() == {"rows": 2, "absolute_error": 2.5, "squared_error": 4.25}


def test_the_oldest_prediction_is_evicted_first() -> None:
    log = feedback.Log(3, LABELS)
    for i in range(5):
        log.record(b"r%d" % i, ["ok"])
    assert (len(log), log.evicted, log.rows_held) == (3, 2, 3)
    assert post(log, {"request_id": "r1", "outcome": "ok"}) == [("unknown", "request_id")]
    assert post(log, {"request_id": "r2", "outcome": "ok"}) == [("counted", "")]
    log.record(b"r2", ["fraud"])  # a reused id: the newest prediction replaces the older
    assert (len(log), log.evicted) == (3, 2)
    assert post(log, {"request_id": "r2", "outcome": "fraud"}) == [("counted", "")]


def test_rows_are_bounded_too() -> None:
    """Batches are logged whole, so the log also holds at most ROWS_PER_ID rows per id."""
    log = feedback.Log(10, LABELS, max_batch=5)
    assert log.max_rows == 10 * feedback.ROWS_PER_ID
    for i in range(20):
        log.record(b"r%d" % i, ["ok"] * 5)
    assert log.rows_held <= log.max_rows
    assert len(log) == log.max_rows // 5


def test_the_shadow_is_judged_on_the_same_outcomes() -> None:
    log = feedback.Log(10, LABELS)
    log.record(b"same", ["ok", "fraud"])
    log.shadow_answered(b"same", None)  # byte for byte our answer
    log.record(b"flipped", ["ok", "fraud"])
    log.shadow_answered(b"flipped", ["fraud", "ok"])
    log.record(b"odd", ["ok"])
    log.shadow_answered(b"odd", ["maybe"])  # not a class: counted wrong
    log.record(b"short", ["ok", "ok"])
    log.shadow_answered(b"short", ["ok"])  # not one per row: not kept
    log.shadow_answered(b"never-logged", ["ok"])
    assert len(log) == 4
    post(
        log,
        {"request_id": "same", "outcomes": ["ok", "ok"]},
        {"request_id": "flipped", "outcomes": ["ok", "ok"]},
        {"request_id": "odd", "outcome": "ok"},
        {"request_id": "short", "outcomes": ["ok", "ok"]},
    )
    assert (log.primary.rows, log.primary.correct) == (7, 5)
    assert (log.shadow.rows, log.shadow.correct) == (5, 2)
    assert log.shadow.by_class == {"ok": [2, 3], "fraud": [0, 0]}
    log.shadow_answered(b"same", None)  # after the outcome: nothing left to count


def test_shadow_values_must_be_numbers() -> None:
    log = feedback.Log(10, VALUES)
    log.record(b"a", [1.0])
    log.shadow_answered(b"a", ["1.0"])
    log.record(b"b", [1.0])
    log.shadow_answered(b"b", [3])
    post(log, {"request_id": "a", "outcome": 1}, {"request_id": "b", "outcome": 1})
    assert log.shadow.summary() == {"rows": 1, "absolute_error": 2.0, "squared_error": 4.0}


def results(*statuses: str) -> list[feedback.Result]:
    return [feedback.Result("x", status, "request_id", status) for status in statuses]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (("counted",), 200),
        (("counted", "unknown", "invalid"), 200),
        (("unknown", "unknown"), 404),
        (("duplicate", "duplicate"), 409),
        (("unknown", "duplicate"), 409),
        (("duplicate", "invalid", "unknown"), 422),
    ],
)
def test_the_answer_status_is_the_worst_failure_when_nothing_counted(
    statuses: tuple[str, ...], code: int
) -> None:
    request = feedback.Request(True, [])
    status, body = feedback.answer(request, results(*statuses))
    assert status == code
    document = json.loads(body)
    assert document["counted"] == statuses.count("counted")
    assert [r["status"] for r in document["results"]] == list(statuses)
    if code != 200:
        assert document["error"].startswith("feedback[")


def test_peers_answers_are_merged_counted_first() -> None:
    local = results("counted", "unknown", "unknown", "unknown", "invalid")
    positions = [1, 2, 3]
    a = feedback.read_answer(
        json.dumps(
            {
                "results": [
                    {"status": "counted"},
                    {"status": "unknown"},
                    {"status": "invalid", "field": "feedback[2].outcomes", "message": "2 rows"},
                ]
            }
        ).encode(),
        3,
    )
    b = feedback.read_answer(
        json.dumps(
            {"results": [{"status": "duplicate"}, {"status": "duplicate"}, {"status": "x"}]}
        ).encode(),
        3,
    )
    assert b is None  # an unknown status: the whole answer is unreadable
    c = feedback.read_answer(b'{"results": [{"status": "duplicate"}]}', 3)  # too short
    assert c is None
    d = feedback.read_answer(
        b'{"results": [{"status": "unknown"}, {"status": "duplicate"}, {"status": "unknown"}]}', 3
    )
    merged = feedback.merge(local, positions, [a, None, d])
    assert [(r.status, r.field) for r in merged] == [
        ("counted", "request_id"),
        ("counted", ""),
        ("duplicate", ""),
        ("invalid", "outcomes"),  # the peer's path, renumbered by the caller's answer
        ("invalid", "request_id"),
    ]
    assert all(r.request_id == "x" for r in merged)


@pytest.mark.parametrize(
    ("outcomes", "prediction", "bound"),
    [
        # Measured 307 B (labels) and 331 B (values) at the peak, 16-character ids: the
        # id 56, the tuple 48, the float 24, the OrderedDict's node and tables (their
        # peak is a resize, old and new table alive at once). A dict per row, or
        # anything kept per id besides, breaks the bound.
        (LABELS, "ok", 350),
        (VALUES, 12.5, 375),
    ],
)
def test_memory_per_logged_prediction_is_bounded(
    outcomes: feedback.Outcomes, prediction: Any, bound: int
) -> None:
    """A log of 100k unmatched single-row predictions holds at most `bound` bytes per
    entry (key, predictions, the log's tables at their largest), at its peak while it
    fills and then turns over twice: eviction keeps it there."""
    n = 100_000
    log = feedback.Log(n, outcomes)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(3 * n):
            # As /predict passes them: a fresh id (generated like this) and answer list.
            log.record(b"%016x" % i, [prediction * 1.0 if outcomes is VALUES else prediction])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    per_entry = (peak - start) / n
    print(f"{per_entry:.0f} B per entry at the peak")
    assert (len(log), log.evicted) == (n, 2 * n)
    assert per_entry < bound


def test_a_peer_that_does_not_answer_holds_nothing() -> None:
    """Forwarding skips this pod's own address; an unreachable peer answers None
    (read as holding none of the items), never an error for the client."""
    from pitstop_serving import peers
    from serving_harness import free_port

    closed, own = free_port(), free_port()
    assert peers.parse(f" 127.0.0.1:{closed}, 127.0.0.1:{own} ,") == [
        ("127.0.0.1", closed),
        ("127.0.0.1", own),
    ]
    with pytest.raises(ValueError, match="is not host:port"):
        peers.parse("pods.example:http")
    found = peers.Peers(peers.parse(f"127.0.0.1:{closed},127.0.0.1:{own}"))

    async def ask() -> list[bytes | None]:
        try:
            return await found.forward(b"{}", None, ("127.0.0.1", own))
        finally:
            if found._client is not None:
                await found._client.aclose()

    assert asyncio.run(ask()) == [None]
    assert feedback.read_answer(None, 1) is None
