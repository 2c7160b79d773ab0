"""Ground truth for predictions: what was predicted, the outcomes clients report later,
and the labelled-prediction counts they make (`POST /feedback`).

Owns the decisions and the bookkeeping, and nothing else: no I/O, no clock, no HTTP
(`app` reads bodies and answers, `peers` forwards what this worker does not hold).

**The log.** Each worker keeps the predictions of its last `retain` successful
`/predict` answers by request id, in arrival order; the oldest is evicted when the
log is full (`evicted` counts them), or when the rows held exceed `ROWS_PER_ID` per
id on average (batches are logged whole — every row may get its outcome — so the
bound on ids alone would let 100k batches of 1,000 rows hold 10^8 predictions).
Memory per entry is kept small: the key is the request id's bytes as received, the
value a tuple of the row predictions (class labels are the model's own label objects,
shared, never copies). An id already counted keeps only a shared marker, so a repeat
is refused as a duplicate, not counted twice. A reused request id replaces the older
prediction. An `OrderedDict`, not a dict: evicting from the front of a plain dict
walks past every deleted slot, quadratic for a log that turns over.

**The shadow.** When this worker mirrors a request, the shadow's answer is kept
beside the entry (`shadow_answered`); an outcome then counts for both models, the
shadow's in its own counters, so a candidate is judged on outcomes that never reach
its pods. An outcome that arrives before the shadow's answer counts for the primary
only.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_ITEMS = 1000
MAX_ID_BYTES = 128  # as /predict: a longer X-Request-ID is replaced by a generated one
ROWS_PER_ID = 4
STATUSES = ("counted", "duplicate", "unknown", "invalid")
# When no item is counted, the answer's status is that of the worst failure.
_RANK = {"unknown": 0, "duplicate": 1, "invalid": 2, "counted": 3}
_STATUS = {"unknown": 404, "duplicate": 409, "invalid": 422}
_ITEM_PREFIX = re.compile(r"^feedback\[\d+\]\.?")
UNKNOWN = "no prediction with this request id is held (never made, or evicted)"
DUPLICATE = "an outcome for this request id was already counted"


class _Counted:
    __slots__ = ()

    def __repr__(self) -> str:
        return "COUNTED"


COUNTED = _Counted()


class Refused(Exception):
    """A feedback request refused as a whole (malformed, too large)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Outcomes:
    """What a true outcome must be for this model; `check` returns it as the model's
    own label (or a float), or raises ValueError saying what is wrong."""

    def __init__(self, kind: str, classes: Sequence[Any] | None) -> None:
        self.kind = kind
        self.classes: tuple[Any, ...] = tuple(classes or ()) if kind != "values" else ()
        # JSON gives str, int, float or bool; True == 1 in Python, so the type is part
        # of the key. A float class also takes the JSON integer of the same value.
        self._labels: dict[tuple[type, Any], Any] = {}
        for label in self.classes:
            self._labels[type(label), label] = label
            if isinstance(label, float) and label.is_integer():
                self._labels[int, int(label)] = label

    @property
    def classifier(self) -> bool:
        return self.kind != "values"

    def label(self, value: Any) -> Any:
        """The model's class equal to `value`, or None."""
        try:
            return self._labels.get((type(value), value))
        except TypeError:  # unhashable (a list or an object)
            return None

    def check(self, value: Any) -> Any:
        if self.classifier:
            label = self.label(value)
            if label is None:
                shown = ", ".join(json.dumps(c) for c in self.classes[:20])
                raise ValueError(f"{_show(value)} is not one of the model's classes ({shown})")
            return label
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{_show(value)} is not a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"{_show(value)} is not a finite number")
        return number


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except ValueError:  # NaN and infinities are refused above; this is a fallback
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True)
class Item:
    """One feedback item whose outcomes fit the model (rows are checked against the log)."""

    request_id: str
    outcomes: tuple[Any, ...]
    single: bool  # given as "outcome", not "outcomes"
    raw: dict[str, Any]  # as received, for forwarding to peers


@dataclass(frozen=True, slots=True)
class Result:
    request_id: str | None
    status: str
    field: str = ""  # within the item: "request_id", "outcomes[1]"
    message: str = ""


@dataclass(frozen=True, slots=True)
class Request:
    batch: bool  # {"feedback": [...]}, whose paths are feedback[i].<field>
    items: list[Item | Result]  # a Result: refused before looking at the log

    def path(self, index: int, field: str) -> str:
        if not self.batch:
            return field or "(body)"
        return f"feedback[{index}].{field}" if field else f"feedback[{index}]"


def parse(body: bytes, outcomes: Outcomes) -> Request:
    """The items of a feedback body; raises `Refused` for a body that is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise Refused(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise Refused(422, "the body must be a JSON object: {request_id, outcomes} or {feedback}")
    if "feedback" not in document:
        return Request(False, [_item(document, outcomes)])
    unknown = sorted(set(document) - {"feedback"})
    if unknown:
        raise Refused(422, f"{unknown[0]}: unknown field (a batch has only feedback)")
    raw = document["feedback"]
    if not isinstance(raw, list) or not raw:
        raise Refused(422, "feedback: must be a non-empty array of items")
    if len(raw) > MAX_ITEMS:
        raise Refused(413, f"feedback: a batch holds at most {MAX_ITEMS} items")
    return Request(True, [_item(item, outcomes) for item in raw])


def _item(raw: Any, outcomes: Outcomes) -> Item | Result:
    if not isinstance(raw, dict):
        return Result(None, "invalid", "", "an item must be an object {request_id, outcomes}")
    request_id = raw.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return Result(None, "invalid", "request_id", "must be a non-empty string")
    if len(request_id.encode()) > MAX_ID_BYTES:
        return Result(request_id, "invalid", "request_id", f"longer than {MAX_ID_BYTES} bytes")
    for name in raw:
        if name not in ("request_id", "outcomes", "outcome"):
            return Result(request_id, "invalid", name, "unknown field")
    if "outcome" in raw:
        if "outcomes" in raw:
            return Result(request_id, "invalid", "outcome", "give outcomes or outcome, not both")
        try:
            return Item(request_id, (outcomes.check(raw["outcome"]),), True, raw)
        except ValueError as error:
            return Result(request_id, "invalid", "outcome", str(error))
    given = raw.get("outcomes")
    if not isinstance(given, list) or not given:
        return Result(request_id, "invalid", "outcomes", "must be a non-empty array")
    checked = []
    for row, value in enumerate(given):
        try:
            checked.append(outcomes.check(value))
        except ValueError as error:
            return Result(request_id, "invalid", f"outcomes[{row}]", str(error))
    return Item(request_id, tuple(checked), False, raw)


class Quality:
    """Labelled-prediction counts of one model (the primary, or its shadow)."""

    __slots__ = ("absolute_error", "by_class", "classifier", "correct", "rows", "squared_error")

    def __init__(self, outcomes: Outcomes) -> None:
        self.classifier = outcomes.classifier
        self.rows = 0
        self.correct = 0
        self.absolute_error = 0.0
        self.squared_error = 0.0
        # By true class: [correct, wrong]; the model's classes only, so bounded.
        self.by_class: dict[Any, list[int]] = {label: [0, 0] for label in outcomes.classes}

    def add(self, predictions: Sequence[Any], outcomes: Sequence[Any]) -> None:
        self.rows += len(outcomes)
        if self.classifier:
            for predicted, true in zip(predictions, outcomes, strict=True):
                right = predicted == true and type(predicted) is type(true)
                self.correct += right
                self.by_class[true][0 if right else 1] += 1
            return
        for predicted, true in zip(predictions, outcomes, strict=True):
            error = predicted - true
            self.absolute_error += abs(error)
            self.squared_error += error * error

    def summary(self) -> dict[str, float]:
        """For /evidence: cumulative counts, the classifier's or the regressor's."""
        if self.classifier:
            return {"rows": self.rows, "correct": self.correct}
        return {
            "rows": self.rows,
            "absolute_error": self.absolute_error,
            "squared_error": self.squared_error,
        }


class Log:
    """The predictions one worker made, by request id, until their outcomes arrive."""

    def __init__(self, retain: int, outcomes: Outcomes, max_batch: int = 1000) -> None:
        self.retain = retain
        self.max_rows = max(ROWS_PER_ID * retain, max_batch)
        self.outcomes = outcomes
        self.primary = Quality(outcomes)
        self.shadow = Quality(outcomes)
        self.rows_held = 0
        self.evicted = 0
        self.items = dict.fromkeys(STATUSES, 0)  # of the feedback this worker answered
        self._entries: OrderedDict[bytes, tuple[Any, ...] | _Counted] = OrderedDict()
        self._shadow: dict[bytes, tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, key: bytes, entry: tuple[Any, ...] | _Counted) -> None:
        if entry is not COUNTED:
            self.rows_held -= len(entry)  # type: ignore[arg-type]
            self._shadow.pop(key, None)

    def record(self, request_id: bytes, predictions: Sequence[Any]) -> None:
        """Log a successful prediction (the answer's rows, in order)."""
        entries = self._entries
        old = entries.pop(request_id, None)
        if old is not None:
            self._forget(request_id, old)
        entries[request_id] = tuple(predictions)
        self.rows_held += len(predictions)
        while len(entries) > self.retain or self.rows_held > self.max_rows:
            key, entry = entries.popitem(last=False)
            self._forget(key, entry)
            self.evicted += 1

    def shadow_answered(self, request_id: bytes, predictions: Any) -> None:
        """The shadow's predictions for a mirrored request: None when its answer was
        byte for byte ours, else its `predictions` as parsed (anything, unchecked)."""
        entry = self._entries.get(request_id)
        if entry is None or entry is COUNTED:
            return
        assert isinstance(entry, tuple)
        if predictions is None:
            self._shadow[request_id] = entry
            return
        if not isinstance(predictions, list) or len(predictions) != len(entry):
            return
        if self.outcomes.classifier:
            # A label outside the classes is kept as it is: counted as wrong.
            label = self.outcomes.label
            shadow = tuple(p if (known := label(p)) is None else known for p in predictions)
        else:
            if not all(
                isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p)
                for p in predictions
            ):
                return
            shadow = tuple(float(p) for p in predictions)
        self._shadow[request_id] = shadow

    def apply(self, request: Request) -> list[Result]:
        """Count the outcomes of the items this log holds (in order, so an id given
        twice is counted once); the others come back `unknown`."""
        results: list[Result] = []
        entries = self._entries
        for item in request.items:
            if isinstance(item, Result):
                results.append(item)
                continue
            key = item.request_id.encode("utf-8")
            entry = entries.get(key)
            if entry is None:
                results.append(Result(item.request_id, "unknown", "request_id", UNKNOWN))
            elif entry is COUNTED:
                results.append(Result(item.request_id, "duplicate", "request_id", DUPLICATE))
            elif len(entry) != len(item.outcomes):  # type: ignore[arg-type]
                field = "outcome" if item.single else "outcomes"
                rows = len(entry)  # type: ignore[arg-type]
                message = f"{len(item.outcomes)} outcomes for a request of {rows} rows"
                results.append(Result(item.request_id, "invalid", field, message))
            else:
                assert isinstance(entry, tuple)
                self.primary.add(entry, item.outcomes)
                shadow = self._shadow.pop(key, None)
                if shadow is not None:
                    self.shadow.add(shadow, item.outcomes)
                entries[key] = COUNTED
                self.rows_held -= len(entry)
                results.append(Result(item.request_id, "counted"))
        return results

    def tally(self, results: Sequence[Result]) -> None:
        """Count the items of an answered feedback request (once: where it landed)."""
        for result in results:
            self.items[result.status] += 1


def unresolved(request: Request, results: Sequence[Result]) -> list[int]:
    """Positions of the items this worker does not hold: for its peers to look up."""
    return [
        i
        for i, (item, result) in enumerate(zip(request.items, results, strict=True))
        if isinstance(item, Item) and result.status == "unknown"
    ]


def forward_body(request: Request, positions: Sequence[int]) -> bytes:
    items = [request.items[i].raw for i in positions]  # type: ignore[union-attr]
    return json.dumps({"feedback": items}).encode()


def read_answer(body: bytes | None, expected: int) -> list[Result] | None:
    """A peer's results for a forwarded batch of `expected` items; None if unreadable."""
    if body is None:
        return None
    try:
        results = json.loads(body)["results"]
        if not isinstance(results, list) or len(results) != expected:
            return None
        read = []
        for result in results:
            status = result["status"]
            if status not in _RANK:
                return None
            field = _ITEM_PREFIX.sub("", str(result.get("field") or ""))
            read.append(Result(None, status, field, str(result.get("message") or "")))
        return read
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def merge(
    results: Sequence[Result], positions: Sequence[int], answers: Sequence[list[Result] | None]
) -> list[Result]:
    """Results with the peers' answers for `positions` folded in: an item counted by
    any peer is counted; one no peer holds (or no peer answered for) stays unknown."""
    merged = list(results)
    for k, position in enumerate(positions):
        best = merged[position]
        for answer in answers:
            if answer is not None and _RANK[answer[k].status] > _RANK[best.status]:
                best = answer[k]
        if best is not merged[position]:
            merged[position] = Result(
                merged[position].request_id, best.status, best.field, best.message
            )
    return merged


def answer(request: Request, results: Sequence[Result]) -> tuple[int, bytes]:
    """The status and body of a feedback answer."""
    rendered: list[dict[str, Any]] = []
    worst: tuple[int, str] | None = None  # (rank, error) of the first worst failure
    for i, result in enumerate(results):
        entry: dict[str, Any] = {"request_id": result.request_id, "status": result.status}
        if result.status != "counted":
            path = request.path(i, result.field)
            entry["field"], entry["message"] = path, result.message
            entry["error"] = f"{path}: {result.message}"
            rank = _RANK[result.status]
            if worst is None or rank > worst[0]:
                worst = (rank, entry["error"])
        rendered.append(entry)
    counted = sum(result.status == "counted" for result in results)
    document: dict[str, Any] = {"results": rendered, "counted": counted}
    if counted or worst is None:
        return 200, json.dumps(document).encode()
    status = next(s for s, r in _RANK.items() if r == worst[0])
    return _STATUS[status], json.dumps({"error": worst[1], **document}).encode()
