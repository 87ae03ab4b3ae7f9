"""The WebSocket hub: live events from the bus to signed-in browsers, by role.

The hub holds one broadcast subscription on ``rtcc.events.>`` per API process
and fans each event out to the connected clients whose role may see its type
(:data:`rtcc.events.LIVE_ROLES`). Each client has a bounded queue; a client
too slow to keep up loses its oldest messages (counted) rather than slowing
the bus.

Pulses go out without their audio (``audio_flac_b64`` null), as from ``GET /api/v1/events``:
street audio can hold voices, and it is played, role-checked and audited per listen through the
incident it belongs to (``GET /api/v1/gunshots/{id}/audio``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

from rtcc.bus import Bus, Subscription
from rtcc.events import ALERT_KIND_ROLES, EVENTS_PREFIX, LIVE_ROLES
from rtcc.metrics import Metrics
from rtcc.roles import Role

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LiveClient:
    """One connected browser."""

    username: str
    role: Role
    types: frozenset[str] | None = None
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(1000))
    dropped: int = 0

    def wants(self, event_type: str) -> bool:
        allowed = LIVE_ROLES.get(event_type, frozenset())
        if self.role not in allowed:
            return False
        return self.types is None or event_type in self.types

    def offer(self, text: str) -> None:
        while True:
            try:
                self.queue.put_nowait(text)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                    self.dropped += 1


class LiveHub:
    """Fan-out of bus events to WebSocket clients."""

    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self.bus = bus
        self.metrics = metrics
        self.clients: set[LiveClient] = set()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"{EVENTS_PREFIX}.>", self._on_event)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.stop()
            self._sub = None

    async def _on_event(self, subject: str, payload: bytes) -> None:
        if not self.clients:
            return
        event_type = subject.rsplit(".", 1)[-1]
        event = json.loads(payload)
        if event_type == "pulse" and event.get("audio_flac_b64"):
            event["audio_flac_b64"] = None  # heard per listen, audited (module docstring)
        narrower = (
            ALERT_KIND_ROLES.get(event.get("kind", "")) if event_type in ("alert", "alert_updated") else None
        )
        text: str | None = None
        for client in list(self.clients):
            if client.wants(event_type) and (narrower is None or client.role in narrower):
                if text is None:
                    text = json.dumps({"kind": "event", "subject": subject, "event": event})
                client.offer(text)
                self.metrics.inc("ws_sent")

    def add(self, client: LiveClient) -> None:
        self.clients.add(client)

    def remove(self, client: LiveClient) -> None:
        self.clients.discard(client)
        if client.dropped:
            self.metrics.inc("ws_dropped", client.dropped)
