"""Checks of what the model answers, before a client ever sees it.

A model that returns a class outside its signature, probabilities outside [0, 1] or
not summing to 1, or non-finite numbers is broken; its answer becomes a 5xx with the
reason (and a metric), never a 200. Batches are checked with a few vectorised numpy
calls; a few probabilities (one row, most of the traffic) in plain Python, since
four numpy reductions over two numbers cost more than a linear model's arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pitstop.packaging import signature as signature_

# Float32 models and summation order leave a little slack around 0, 1 and sum = 1.
TOLERANCE = 1e-6
# Up to this many probabilities, plain Python checks them faster than numpy does.
SMALL = 16


class InvalidOutput(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Checker:
    def __init__(self, output: signature_.Output) -> None:
        self.output = output
        self.classes = np.asarray(output.classes or [], dtype=object)
        self._class_set = frozenset(output.classes or ())

    def probabilities(self, proba: Any) -> tuple[list[Any], list[list[float]]]:
        """Labels (the most probable class) and probability rows, if valid."""
        p = np.asarray(proba, dtype=np.float64)
        if p.size <= SMALL and p.ndim == 2 and p.shape[1] == len(self.classes):
            return self._few(p.tolist())
        if p.ndim != 2 or p.shape[1] != len(self.classes):
            raise InvalidOutput(
                "shape",
                f"the model returned probabilities of shape {p.shape} for "
                f"{len(self.classes)} classes",
            )
        if not np.isfinite(p).all():
            raise InvalidOutput("not_finite", "the model returned non-finite probabilities")
        if (p < -TOLERANCE).any() or (p > 1 + TOLERANCE).any():
            raise InvalidOutput("out_of_range", "the model returned probabilities outside [0, 1]")
        if (np.abs(p.sum(axis=1) - 1.0) > TOLERANCE * p.shape[1] + TOLERANCE).any():
            raise InvalidOutput("not_normalised", "the model's probabilities do not sum to 1")
        return self.classes[p.argmax(axis=1)].tolist(), p.tolist()

    def _few(self, rows: list[list[float]]) -> tuple[list[Any], list[list[float]]]:
        """`probabilities` for a few rows: the same checks, in the same order."""
        slack = TOLERANCE * len(self.classes) + TOLERANCE
        for row in rows:
            if not all(map(math.isfinite, row)):
                raise InvalidOutput("not_finite", "the model returned non-finite probabilities")
        for row in rows:
            if min(row) < -TOLERANCE or max(row) > 1 + TOLERANCE:
                raise InvalidOutput(
                    "out_of_range", "the model returned probabilities outside [0, 1]"
                )
        for row in rows:
            if abs(math.fsum(row) - 1.0) > slack:
                raise InvalidOutput("not_normalised", "the model's probabilities do not sum to 1")
        classes = self.classes
        # Ties go to the first class, as numpy's argmax does.
        return [classes[max(range(len(row)), key=row.__getitem__)] for row in rows], rows

    def labels(self, predicted: Any) -> list[Any]:
        labels: list[Any] = np.asarray(predicted).tolist()
        for label in labels:
            if label not in self._class_set:
                raise InvalidOutput(
                    "unknown_class", f"the model returned {label!r}, which is not a known class"
                )
        return labels

    def values(self, predicted: Any) -> list[float]:
        v = np.asarray(predicted, dtype=np.float64).reshape(-1)
        if not np.isfinite(v).all():
            raise InvalidOutput("not_finite", "the model returned a non-finite value")
        values: list[float] = v.tolist()
        return values
