"""The recorder: every validated event on the bus is written to the store once.

Runs as ``rtcc worker recorder`` (or inside ``rtcc serve``). Several members
of the queue group ``recorder`` take messages concurrently; their events are
gathered into one batch insert (up to ``batch_size`` events or ``linger_s``
seconds), and each message is acknowledged only after its batch is committed.
Recording is idempotent by event id, so a redelivered message is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError

from rtcc.bus import Bus, Subscription
from rtcc.events import EVENTS_PREFIX, Event, parse_event
from rtcc.metrics import Metrics
from rtcc.store.db import Store

log = logging.getLogger(__name__)


class Recorder:
    """Batching, idempotent writer of bus events into the ``events`` table."""

    group = "recorder"

    def __init__(
        self,
        store: Store,
        bus: Bus,
        metrics: Metrics,
        *,
        members: int = 500,
        batch_size: int = 500,
        linger_s: float = 0.02,
    ) -> None:
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.members = members
        self.batch_size = batch_size
        self.linger_s = linger_s
        self._pending: list[tuple[Event, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flush_loop(), name="recorder")
        for _ in range(self.members):
            self._subs.append(await self.bus.subscribe(f"{EVENTS_PREFIX}.>", self._handle, group=self.group))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pending:
            await self._flush()
        log.info(
            "recorder stopped: wrote %d event(s), %d duplicate(s) skipped",
            self.metrics.get("recorder_written"),
            self.metrics.get("recorder_duplicates"),
        )

    async def _handle(self, subject: str, payload: bytes) -> None:
        try:
            event = parse_event(payload)
        except ValidationError as exc:
            # a malformed message can never succeed: log, count, and let it be acked
            self.metrics.inc("recorder_malformed")
            log.warning("recorder: dropping malformed message on %s: %s", subject, exc.errors()[0])
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, fut))
        if len(self._pending) >= self.batch_size:
            self._wake.set()
        await fut

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.linger_s)
            self._wake.clear()
            if self._pending:
                await self._flush()

    async def _flush(self) -> None:
        from rtcc.store.events_repo import record_events

        batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
        events = [e for e, _ in batch]
        try:
            new = await self.store.write(lambda s: record_events(s, events))
        except Exception as exc:
            self.metrics.inc("recorder_errors")
            log.exception("recorder: batch of %d failed; messages will be redelivered", len(batch))
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self.metrics.inc("recorder_written", new)
        if new < len(events):
            self.metrics.inc("recorder_duplicates", len(events) - new)
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)
