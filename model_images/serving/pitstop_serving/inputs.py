"""Request validation compiled once from the package signature.

The body is validated straight from bytes by pydantic-core against a TypedDict built
from the signature (strict types, unknown fields forbidden, closed category sets,
finite numbers), which is both the cheapest check available in Python and the one
with the best messages. Every failure becomes an `Invalid` carrying a 4xx status and
the fields at fault, so malformed input can never reach the model and cause a 500.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, cast

import numpy as np
from pitstop.packaging import signature as signature_
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

UNKNOWN_FIELD = "(unknown)"
BODY = "(body)"


@dataclass(frozen=True)
class Problem:
    field: str  # a declared feature, UNKNOWN_FIELD or BODY: a metric label
    row: int | None
    message: str
    path: str | None = None  # where the client put it, when not `field` (V2: inputs[2].data[5])


class Invalid(Exception):
    """A request the template refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)

    def body(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "detail": [
                {"field": p.path or p.field, "row": p.row, "message": p.message}
                for p in self.problems
            ],
        }


def _field_type(feature: signature_.Feature) -> Any:
    kind: Any
    if feature.kind == "number":
        kind = float
    elif feature.kind == "integer":
        kind = int
    elif feature.kind == "boolean":
        kind = bool
    else:
        kind = Literal[tuple(feature.categories or ())]
    return Optional[kind] if feature.nullable else kind  # noqa: UP045 - runtime type


def row_type(signature: signature_.Signature) -> type[Any]:
    """A TypedDict of the signature's features, configured for strict validation."""
    fields = {feature.name: _field_type(feature) for feature in signature.features}
    row = cast(Any, TypedDict("Row", fields))  # type: ignore[operator]
    row.__pydantic_config__ = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    return cast(type[Any], row)


class Schema:
    """Parses a request body into rows (tuples in signature order)."""

    def __init__(self, signature: signature_.Signature, max_batch: int) -> None:
        self.names = signature.names
        self.max_batch = max_batch
        row = row_type(signature)
        batch: Any = Annotated[list[row], Field(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
        self._row: TypeAdapter[Any] = TypeAdapter(row)
        self._batch: TypeAdapter[list[Any]] = TypeAdapter(batch)
        getter = operator.itemgetter(*self.names)
        # itemgetter of a single name returns the value, not a 1-tuple.
        self._pick: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            getter if len(self.names) > 1 else (lambda row: (getter(row),))
        )
        self._known = set(self.names)

    def json_schema(self) -> dict[str, Any]:
        return {
            "oneOf": [self._row.json_schema(), self._batch.json_schema()],
            "description": "one row (an object) or a batch (an array of rows)",
        }

    def parse(self, body: bytes) -> list[tuple[Any, ...]]:
        start = body.lstrip()[:1]
        if not start:
            raise Invalid(400, "the request body is empty")
        try:
            if start == b"[":
                rows = self._batch.validate_json(body)
            elif start == b"{":
                rows = [self._row.validate_json(body)]
            else:
                self._row.validate_json(body)  # names the JSON error, if that is the problem
                raise Invalid(422, "the body must be a JSON object (one row) or an array of rows")
        except ValidationError as error:
            raise self._invalid(error, batch=start == b"[") from None
        pick = self._pick
        return [pick(row) for row in rows]

    def _invalid(self, error: ValidationError, batch: bool) -> Invalid:
        problems = []
        for item in error.errors(include_url=False, include_context=False, include_input=False):
            loc = list(item["loc"])
            kind = item["type"]
            if kind == "json_invalid":
                return Invalid(400, f"the body is not valid JSON: {item['msg']}")
            if batch and not loc and kind == "too_long":
                return Invalid(413, f"a batch holds at most {self.max_batch} rows")
            row = int(loc.pop(0)) if batch and loc and isinstance(loc[0], int) else None
            name = str(loc[0]) if loc else BODY
            # Only declared features become metric labels: a client inventing field
            # names must not be able to create time series.
            if kind == "extra_forbidden":
                field = UNKNOWN_FIELD
                message = f"unknown field {name!r}"
            else:
                field = name if name in self._known else BODY
                message = item["msg"]
            problems.append(Problem(field=field, row=row, message=message))
        summary = "; ".join(
            f"{p.message}" if p.field == UNKNOWN_FIELD else f"{p.field}: {p.message}"
            for p in problems[:5]
        )
        return Invalid(422, f"invalid request: {summary}", problems)


def matrix(rows: Sequence[tuple[Any, ...]]) -> np.ndarray:
    """Numeric rows as a float matrix (booleans as 0/1, null as NaN)."""
    return np.array(rows, dtype=np.float64)
