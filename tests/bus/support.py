"""Test doubles for the bus tests: a recording handler and the per-engine environment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rtcc.bus import Bus

WAIT_S = 20.0
"""Generous ceiling for waits on deliveries (never a timing assertion)."""


class Collector:
    """A handler that records ``(subject, payload)`` and lets tests wait for deliveries.

    Parameters
    ----------
    fail_times : int
        Raise on the first ``fail_times`` deliveries of each payload.
    share_with : Collector, optional
        Wake the same waiters as this collector, so one wait can watch
        several handlers (e.g. the members of a queue group).
    """

    def __init__(self, fail_times: int = 0, share_with: Collector | None = None) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.attempts: dict[bytes, int] = {}
        self.fail_times = fail_times
        self._cond: asyncio.Condition = share_with._cond if share_with is not None else asyncio.Condition()

    async def __call__(self, subject: str, payload: bytes) -> None:
        n = self.attempts.get(payload, 0) + 1
        self.attempts[payload] = n
        if n <= self.fail_times:
            raise RuntimeError(f"induced failure {n} for {payload!r}")
        async with self._cond:
            self.items.append((subject, payload))
            self._cond.notify_all()

    @property
    def payloads(self) -> list[bytes]:
        return [p for _, p in self.items]

    async def wait_for(self, predicate: Callable[[], bool], what: str = "deliveries") -> None:
        """Wait until ``predicate()`` holds after some delivery (fails after ``WAIT_S``)."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(predicate), WAIT_S)
            except TimeoutError:
                raise AssertionError(f"timed out waiting for {what}; got {self.items!r}") from None

    async def wait_payloads(self, *payloads: bytes) -> None:
        """Wait until every one of ``payloads`` has been handled."""
        want = set(payloads)
        await self.wait_for(lambda: want <= set(self.payloads), f"payloads {sorted(want)!r}")


@dataclass
class BusEnv:
    """A started bus on one engine plus a way to get a peer on the same broker."""

    engine: str
    bus: Bus
    prefix: str
    make_peer: Callable[[], Awaitable[Bus]]
    stream: str | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def subject(self, *tokens: str) -> str:
        return ".".join((self.prefix, *tokens))

    async def peer(self) -> Bus:
        """Another member of the bus (same object on memory, new connection on NATS)."""
        return await self.make_peer()
