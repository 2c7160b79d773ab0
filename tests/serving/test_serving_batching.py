"""Micro-batching: concurrent requests share one model call, each gets its own rows'
answers, a failing batch fails only the request at fault, and the event loop stays free
while the model works. In process with a model of the test's own (the batching logic),
then against a real server with batching on (the same answers as without)."""

from __future__ import annotations

import asyncio
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import local_http
import pytest
from pitstop.packaging.bento import default_template
from serving_cluster import Cluster
from serving_harness import fraud_row, metric

sys.path.insert(0, str(default_template()))
from pitstop_serving import batching

pytestmark = pytest.mark.serving


class Model:
    """Predicts each row's sum; refuses a call holding a negative number (as a model
    whose output fails the checks would); records the rows of every call."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[int] = []
        self.gate = gate

    def model_input(self, rows: Any) -> list[tuple[float, ...]]:
        return list(rows)

    def predict(self, rows: list[tuple[float, ...]]) -> dict[str, Any]:
        if self.gate is not None:
            assert self.gate.wait(10), "the event loop never opened the gate"
        self.calls.append(len(rows))
        if any(value < 0 for row in rows for value in row):
            raise ValueError("negative")
        return {"predictions": [sum(row) for row in rows], "model": "sum"}


class Sizes:
    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, value: float) -> None:
        self.seen.append(value)


def run(batcher: batching.Batcher, requests: list[list[tuple[float, ...]]]) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.predict(r) for r in requests), return_exceptions=True)

    try:
        return asyncio.run(main())
    finally:
        batcher.close()


def test_concurrent_requests_share_one_call_and_each_gets_its_own_rows() -> None:
    model, sizes = Model(), Sizes()
    requests = [[(1.0, 2.0)], [(3.0, 4.0), (5.0, 6.0)], [(7.0, 0.0)]]
    answers = run(batching.Batcher(model, 0.05, 64, sizes), requests)
    assert answers == [
        {"predictions": [3.0], "model": "sum"},
        {"predictions": [7.0, 11.0], "model": "sum"},
        {"predictions": [7.0], "model": "sum"},
    ]
    assert model.calls == [4]
    assert sizes.seen == [4]


def test_batches_hold_at_most_max_rows_and_the_rest_go_next() -> None:
    model = Model()
    answers = run(batching.Batcher(model, 0.05, 4, Sizes()), [[(float(i),)] for i in range(6)])
    assert [a["predictions"] for a in answers] == [[float(i)] for i in range(6)]
    assert model.calls == [4, 2]


def test_a_failing_batch_fails_only_the_request_at_fault() -> None:
    model = Model()
    answers = run(batching.Batcher(model, 0.05, 64, Sizes()), [[(1.0,)], [(-1.0,)], [(2.0,)]])
    assert answers[0] == {"predictions": [1.0], "model": "sum"}
    assert isinstance(answers[1], ValueError)
    assert answers[2] == {"predictions": [2.0], "model": "sum"}
    assert model.calls == [3, 1, 1, 1]  # the batch, then each alone


def test_a_model_that_cannot_batch_is_called_per_request() -> None:
    model = Model()
    run(batching.Batcher(model, 0.05, 64, Sizes(), batchable=False), [[(1.0,)], [(2.0,)]])
    assert model.calls == [1, 1]


def test_the_event_loop_runs_while_the_model_works() -> None:
    """The model's call waits for a gate only the event loop opens: were the call on
    the loop, it would never return."""
    gate = threading.Event()
    batcher = batching.Batcher(Model(gate), 0.001, 64, Sizes())

    async def main() -> Any:
        prediction = asyncio.ensure_future(batcher.predict([(1.0,)]))
        await asyncio.sleep(0.05)  # the call is on the worker thread by now
        assert not prediction.done()
        gate.set()
        return await prediction

    try:
        assert asyncio.run(main())["predictions"] == [1.0]
    finally:
        batcher.close()


def test_a_batching_server_answers_as_one_that_does_not(cluster: Cluster) -> None:
    rows = [fraud_row(amount=float(10 * i + 1)) for i in range(24)]
    before = metric(
        local_http.get(f"{cluster.batched.url}/metrics").text, "pitstop_batch_rows_count"
    )

    def ask(url: str) -> list[httpx.Response]:
        with ThreadPoolExecutor(12) as pool:
            return list(pool.map(lambda row: local_http.post(f"{url}/predict", json=row), rows))

    batched, plain = ask(cluster.batched.url), ask(cluster.same.url)
    assert [r.status_code for r in batched] == [200] * len(rows)
    # The same classes; probabilities to the last bits only (a matrix of 12 rows takes
    # other floating-point paths than 12 of one row).
    assert [r.json()["predictions"] for r in batched] == [r.json()["predictions"] for r in plain]
    for ours, theirs in zip(batched, plain, strict=True):
        for mine, other in zip(ours.json()["probabilities"], theirs.json()["probabilities"],
                               strict=True):  # fmt: skip
            assert mine == pytest.approx(other, rel=1e-9, abs=1e-12)
    text = local_http.get(f"{cluster.batched.url}/metrics").text
    calls = metric(text, "pitstop_batch_rows_count") - before
    assert calls < len(rows)  # some calls carried several requests' rows
    invalid = local_http.post(f"{cluster.batched.url}/predict", json={"amount": "x"})
    assert invalid.status_code == 422  # validation stays per request, before any batch
