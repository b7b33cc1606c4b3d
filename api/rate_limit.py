"""A per-principal rate limit: a token bucket for each authenticated caller, in this process.

Each principal (the token's or the session's subject) may make `SIGNOFF_RATE_LIMIT_BURST`
calls at once and `SIGNOFF_RATE_LIMIT_PER_S` a second sustained; past that the API answers 429
`REQUEST_LIMIT_EXCEEDED` with `Retry-After` (the seconds until the next call is allowed)
before doing anything, so neither Signoff nor the MLflow server behind it sees the excess.

The buckets live in the process's memory: with N API replicas a principal gets up to N times
the rate in all. That bounds what one client can do to MLflow and the workers well enough
without a shared store; a gateway in front does better if an exact global figure matters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.settings import ApiSettings

MAX_TRACKED = 10_000
"""Buckets kept at most; past this, the full ones (idle callers) are forgotten first."""


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by principal: `take(key)` spends one token and returns 0, or
    returns the seconds until one is available (and spends nothing)."""

    def __init__(
        self, per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_s = per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> RateLimiter | None:
        """None when `SIGNOFF_RATE_LIMIT_PER_S` is 0 (no limit)."""
        if settings.rate_limit_per_s <= 0:
            return None
        return cls(settings.rate_limit_per_s, settings.rate_limit_burst)

    def take(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_TRACKED:
                    self._forget_idle(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_s)
            bucket.stamp = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.per_s

    def _forget_idle(self, now: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.stamp) * self.per_s >= self.burst
        ]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def retry_after_header(wait_s: float) -> str:
    """`Retry-After` in whole seconds, never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(wait_s)))
