"""One limit's verdict, and how a metric's limits add up to the metric's verdict. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["Pass", "Fail", "Inconclusive"]


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str = ""
    needs: int | None = None
    """About how many more candidate requests would settle it."""


def combine(
    outcomes: Sequence[Outcome], requests: float, min_requests: int
) -> tuple[Verdict, int | None]:
    """Fail if a limit fails; Pass if all pass on at least `min_requests`; else
    Inconclusive, needing what the slowest limit needs."""
    if any(o.verdict == "Fail" for o in outcomes):
        return "Fail", None
    pending = [o for o in outcomes if o.verdict != "Pass"]
    short = max(0, math.ceil(min_requests - requests))
    if not pending and short == 0:
        return "Pass", None
    needs = [o.needs for o in pending]
    if any(n is None for n in needs):
        return "Inconclusive", None
    return "Inconclusive", max([short, *(n for n in needs if n is not None)])


def reasons(outcomes: Sequence[Outcome]) -> str:
    return "; ".join(o.reason for o in outcomes if o.reason and o.verdict != "Pass")


def more_requests(deficit: float, rate: float | None) -> int | None:
    """Requests until `deficit` more nats of evidence, at `rate` nats per request."""
    if deficit <= 0:
        return 1
    if rate is None or rate <= 1e-12:
        return None
    return max(1, math.ceil(deficit / rate))
