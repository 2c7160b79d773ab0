"""Per-key token buckets: `rate` tokens a second, at most `burst` saved up.

All requests of a worker run on one event loop, so the buckets need no lock. The
clock is passed in, which keeps the arithmetic testable.
"""

from __future__ import annotations

ANONYMOUS = ""


class Buckets:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._state: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, now: float) -> float:
        """0 if `key` may make a request now, else the seconds until it may."""
        tokens, last = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
