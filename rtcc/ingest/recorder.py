"""The recorder: every validated event on the bus is written to the store once.

Runs as ``rtcc worker recorder`` (or inside ``rtcc serve``). Several members
of the queue group ``recorder`` take messages concurrently; their events are
gathered into one batch insert (up to ``batch_size`` events or ``linger_s``
seconds, :class:`~rtcc.store.batcher.MicroBatcher`), and each message is
acknowledged only after its batch is committed. Recording is idempotent by
event id, so a redelivered message is harmless.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from rtcc.bus import Bus, Subscription
from rtcc.events import EVENTS_PREFIX, Event, parse_event
from rtcc.metrics import Metrics
from rtcc.store.batcher import MicroBatcher
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
        self._batcher: MicroBatcher[Event, None] = MicroBatcher(
            self._write, max_items=batch_size, max_wait_s=linger_s, name="recorder"
        )
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._batcher.start()
        for _ in range(self.members):
            self._subs.append(await self.bus.subscribe(f"{EVENTS_PREFIX}.>", self._handle, group=self.group))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        await self._batcher.stop()  # writes every event accepted before
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
        await self._batcher.submit(event)

    async def _write(self, events: list[Event]) -> list[None]:
        """Record one batch in one transaction (the batcher fails every message of a failed batch)."""
        from rtcc.store.events_repo import record_events

        try:
            new = await self.store.write(lambda s: record_events(s, events))
        except Exception:
            self.metrics.inc("recorder_errors")
            log.exception("recorder: batch of %d failed; messages will be redelivered", len(events))
            raise
        self.metrics.inc("recorder_written", new)
        if new < len(events):
            self.metrics.inc("recorder_duplicates", len(events) - new)
        return [None] * len(events)
