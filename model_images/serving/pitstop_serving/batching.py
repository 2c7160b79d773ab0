"""Adaptive micro-batching: concurrent `/predict` requests share one model call.

For models whose prediction dominates the request (a forest, a boosted ensemble), one
call on 32 rows costs little more than a call on one; called per request, such a model
is the server's wall. With `PITSTOP_BATCH_WAIT_MS` set, a request's rows wait at most
that long for others' — or until `PITSTOP_BATCH_MAX_ROWS` are gathered — and the batch
is predicted in one call on one worker thread, off the event loop: `/livez`, `/readyz`
and `/metrics` answer while the model works. Requests that arrive while a batch runs
gather for the next one, which starts as soon as the thread is free: under load batches
grow by themselves (no timer), idle a lone request waits at most the wait.

Each request gets its own rows' answers. Validation stays per request (it happens
before a request joins a batch). When a batch call fails — the model raised, or its
output failed the checks — each of its requests is predicted alone, so the failure is
only the offending request's own, as it would be without batching. A package that
declares it cannot batch (`batchable: false`) is called per request, still off the
event loop.

The batch sizes are counted (`pitstop_batch_rows`), so the benefit can be read off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

log = logging.getLogger("pitstop.batching")

Rows = Sequence[tuple[Any, ...]]
Result = dict[str, Any]


class Model(Protocol):
    def model_input(self, rows: Rows) -> Any: ...

    def predict(self, model_input: Any) -> Result: ...


class Sizes(Protocol):
    def observe(self, value: float) -> None: ...


def split(result: Result, counts: Sequence[int]) -> list[Result]:
    """One batch's answer cut into each request's: every list-valued entry is per row."""
    parts: list[Result] = []
    start = 0
    for count in counts:
        end = start + count
        parts.append({k: v[start:end] if isinstance(v, list) else v for k, v in result.items()})
        start = end
    return parts


class Batcher:
    def __init__(
        self, model: Model, wait: float, max_rows: int, sizes: Sizes, batchable: bool = True
    ) -> None:
        self.model = model
        self.wait = wait
        self.max_rows = max_rows if batchable else 1
        self.sizes = sizes
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pitstop-predict")
        self._pending: list[tuple[Rows, asyncio.Future[Result]]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False

    async def predict(self, rows: Rows) -> Result:
        """This request's answer (raises what predicting its rows alone would raise)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((rows, future))
        self._rows += len(rows)
        if not self._busy:
            if self._rows >= self.max_rows:
                self._start()
            elif self._timer is None:
                self._timer = loop.call_later(self.wait, self._start)
        return await future

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy or not self._pending:
            return
        # Whole requests, in order, up to max_rows (a request larger than that goes alone).
        taken, rows = 0, 0
        for request_rows, _ in self._pending:
            if taken and rows + len(request_rows) > self.max_rows:
                break
            taken += 1
            rows += len(request_rows)
        batch, self._pending = self._pending[:taken], self._pending[taken:]
        self._rows -= rows
        self._busy = True
        self.sizes.observe(rows)
        work = asyncio.get_running_loop().run_in_executor(
            self._pool, _predict_all, self.model, [r for r, _ in batch]
        )
        work.add_done_callback(lambda done: self._finished([f for _, f in batch], done))

    def _finished(
        self, futures: list[asyncio.Future[Result]], done: asyncio.Future[list[Any]]
    ) -> None:
        self._busy = False
        outcomes = done.result()  # _predict_all catches everything per request
        for future, outcome in zip(futures, outcomes, strict=True):
            if future.cancelled():
                continue  # the client went away
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        if self._pending:
            self._start()  # these waited while the thread was busy: no more waiting

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _predict_all(model: Model, requests: list[Rows]) -> list[Result | BaseException]:
    """On the worker thread: one call for every request, or, if that fails, one each."""
    if len(requests) > 1:
        try:
            everything = [row for rows in requests for row in rows]
            result = model.predict(model.model_input(everything))
            return list(split(result, [len(rows) for rows in requests]))
        except Exception as error:
            log.debug("a batch of %d requests failed (%r); predicting each", len(requests), error)
    outcomes: list[Result | BaseException] = []
    for rows in requests:
        try:
            outcomes.append(model.predict(model.model_input(rows)))
        except Exception as error:
            outcomes.append(error)
    return outcomes
