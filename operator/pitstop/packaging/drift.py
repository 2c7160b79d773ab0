"""Covariate drift: PSI of recent inputs against the training data profile.

The serving template calls `Window.add` on every request, so that path only copies
already-encoded values into a preallocated ring buffer (a few microseconds); the
binning and the PSI sums run in `Window.scores`, once per metrics scrape. Pure: numpy
only, no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pitstop.packaging import profile as profile_
from pitstop.packaging.signature import Label

# Empty bins would make PSI infinite; both shares are floored at this value, the usual
# choice in credit-scoring practice where PSI comes from.
EPSILON = 1e-4
DEFAULT_WINDOW = 1000


def psi(expected: Sequence[float], observed_counts: Sequence[float]) -> float:
    """Population stability index of observed counts against expected shares.

    0 means the same distribution; by convention < 0.1 is stable, 0.1-0.25 a
    moderate shift and > 0.25 a major one. No observations score 0.
    """
    if len(expected) != len(observed_counts):
        raise ValueError(f"{len(expected)} expected shares but {len(observed_counts)} counts")
    total = float(sum(observed_counts))
    if total <= 0:
        return 0.0
    score = 0.0
    for share, count in zip(expected, observed_counts, strict=True):
        e = max(float(share), EPSILON)
        a = max(float(count) / total, EPSILON)
        score += (a - e) * math.log(a / e)
    return score


class Window:
    """The last `size` rows seen, encoded as floats, and their PSI per feature.

    Categorical values are stored as their index in the profile's category list, and
    unknown categories as NaN (the request validator rejects them before this).
    """

    def __init__(self, profile: profile_.DataProfile, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError("the drift window needs at least one row")
        self.names = [feature.name for feature in profile.features]
        self._features = list(profile.features)
        self._codes: list[Mapping[Label, int] | None] = [
            {category: code for code, category in enumerate(feature.categorical.categories)}
            if feature.categorical is not None
            else None
            for feature in profile.features
        ]
        self._buffer = np.full((size, len(self._features)), np.nan, dtype=np.float64)
        self._size = size
        self._next = 0
        self._filled = 0

    @property
    def filled(self) -> int:
        return self._filled

    @property
    def has_categories(self) -> bool:
        return any(codes is not None for codes in self._codes)

    def encode(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        """Rows of raw values (signature order) as the float matrix `add` takes."""
        out = np.empty((len(rows), len(self._features)), dtype=np.float64)
        for i, row in enumerate(rows):
            for j, (value, codes) in enumerate(zip(row, self._codes, strict=True)):
                if value is None:
                    out[i, j] = np.nan
                elif codes is None:
                    out[i, j] = float(value)
                else:
                    code = codes.get(value)
                    out[i, j] = np.nan if code is None else code
        return out

    def add(self, values: np.ndarray) -> None:
        """Remember encoded rows, forgetting the oldest beyond the window size."""
        n = values.shape[0]
        if n >= self._size:
            self._buffer[:] = values[-self._size :]
            self._next = 0
            self._filled = self._size
            return
        end = self._next + n
        if end <= self._size:
            self._buffer[self._next : end] = values
        else:
            split = self._size - self._next
            self._buffer[self._next :] = values[:split]
            self._buffer[: n - split] = values[split:]
        self._next = end % self._size
        self._filled = min(self._filled + n, self._size)

    def scores(self) -> dict[str, float]:
        """PSI per feature over the rows in the window (0 while it is empty)."""
        window = self._buffer[: self._filled]
        result: dict[str, float] = {}
        for j, feature in enumerate(self._features):
            column = window[:, j]
            column = column[~np.isnan(column)]
            if feature.categorical is not None:
                expected = feature.categorical.fractions
                counts = np.bincount(column.astype(np.int64), minlength=len(expected))
            elif feature.numeric is not None:
                expected = feature.numeric.fractions
                cuts = np.asarray(feature.numeric.cuts, dtype=np.float64)
                counts = profile_.bin_counts(cuts, column)
            else:
                continue
            result[feature.name] = psi(expected, counts.tolist())
        return result
