"""A sliding-window rate limiter (per client IP for public registrations)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` hits per key within ``window_s`` seconds.

    Memory is bounded: keys whose hits have all aged out are dropped, and at
    most ``max_keys`` keys are tracked (the oldest are forgotten first).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def peek(self, key: str) -> float | None:
        """Like :meth:`hit` but without counting: None when allowed, else seconds until it would be."""
        q = self._hits.get(key)
        if q is None:
            return None
        now = self._clock()
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            return self.window_s - (now - q[0])
        return None

    def hit(self, key: str) -> float | None:
        """Count a hit for ``key``; None when allowed, else seconds until it would be."""
        now = self._clock()
        q = self._hits.get(key)
        if q is None:
            if len(self._hits) >= self.max_keys:
                self._hits.pop(next(iter(self._hits)))
            q = self._hits[key] = deque()
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            return self.window_s - (now - q[0])
        q.append(now)
        return None

    def release(self, key: str) -> None:
        """Give back one hit of ``key`` (the newest): the request it was taken for did not use the quota.

        Take the slot with :meth:`hit` *before* any await and release it if
        the request is refused, so concurrent requests cannot all pass a
        :meth:`peek` first. Which timestamp goes back only moves when a slot
        frees up within the window; the count is exact.
        """
        q = self._hits.get(key)
        if q:
            q.pop()
