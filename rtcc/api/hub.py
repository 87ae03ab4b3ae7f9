"""The WebSocket hub: live events from the bus to signed-in browsers, by role.

The hub holds one broadcast subscription on ``rtcc.events.>`` per API process
and fans each event out to the connected clients whose role may see its type
(:data:`rtcc.events.LIVE_ROLES`). Each client has a bounded queue; a client
too slow to keep up loses its oldest messages (counted) rather than slowing
the bus.

The hub also keeps the open live video views (``GET /api/v1/cameras/{id}/live.mjpeg``) as
:class:`LiveView`: they are sent no events and are not WebSocket clients (``websocket_clients``
counts only sockets), but they end with their viewer's session like a socket
(:meth:`LiveHub.end_sessions`).

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
from typing import Protocol, TypeVar

from rtcc.bus import Bus, Subscription
from rtcc.events import ALERT_KIND_ROLES, EVENTS_PREFIX, LIVE_ROLES
from rtcc.metrics import Metrics
from rtcc.roles import Role

log = logging.getLogger(__name__)


class SessionBound(Protocol):
    """Something open on behalf of one session, ended with it (:meth:`LiveHub.end_sessions`)."""

    @property
    def username(self) -> str: ...
    @property
    def token_hash(self) -> str | None: ...
    @property
    def ended(self) -> asyncio.Event: ...


_S = TypeVar("_S", bound=SessionBound)


@dataclass(eq=False)
class LiveView:
    """One open live video view: sent no bus events, but bound to its viewer's session."""

    username: str
    token_hash: str | None = None
    """The session behind the view (None: not a session token)."""
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the viewer's session was ended in this process (the view stops)."""


@dataclass(eq=False)
class LiveClient:
    """One connected browser."""

    username: str
    role: Role
    types: frozenset[str] | None = None
    token_hash: str | None = None
    """The session behind the socket (None: not a session token)."""
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(1000))
    dropped: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the session behind the socket was ended in this process (the socket closes)."""

    def wants(self, event_type: str) -> bool:
        allowed = LIVE_ROLES.get(event_type, frozenset())
        if self.role not in allowed:
            return False
        return self.types is None or event_type in self.types

    def offer(self, text: str) -> int:
        """Queue ``text``; how many of the oldest messages were dropped to make room."""
        dropped = 0
        while True:
            try:
                self.queue.put_nowait(text)
                self.dropped += dropped
                return dropped
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                    dropped += 1


class LiveHub:
    """Fan-out of bus events to WebSocket clients, and the session-bound live views."""

    def __init__(self, bus: Bus, metrics: Metrics) -> None:
        self.bus = bus
        self.metrics = metrics
        self.clients: set[LiveClient] = set()
        """The WebSocket clients (offered bus events)."""
        self.views: set[LiveView] = set()
        """The open live video views (offered nothing; ended with their sessions)."""
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
                dropped = client.offer(text)
                if dropped:
                    self.metrics.inc("ws_dropped", dropped)
                self.metrics.inc("ws_sent")

    def add(self, client: LiveClient) -> None:
        self.clients.add(client)

    def remove(self, client: LiveClient) -> None:
        self.clients.discard(client)

    def add_view(self, view: LiveView) -> None:
        self.views.add(view)

    def remove_view(self, view: LiveView) -> None:
        self.views.discard(view)

    def end_sessions(
        self,
        *,
        username: str | None = None,
        token_hash: str | None = None,
        keep_token_hash: str | None = None,
    ) -> int:
        """End the sockets and live views of ``username`` (every session) or of one session, at once.

        Called where this process ends sessions (sign-out, disable, role change, new
        password); sessions ended elsewhere are caught by the socket's and the view's periodic
        checks. ``keep_token_hash`` spares one session (a person changing their own password).
        Returns how many sockets and views were told.
        """
        return _end(self.clients, username, token_hash, keep_token_hash) + _end(
            self.views, username, token_hash, keep_token_hash
        )


def _end(bag: set[_S], username: str | None, token_hash: str | None, keep_token_hash: str | None) -> int:
    """Remove from ``bag`` and tell (``ended``) those of ``username`` or of session ``token_hash``."""
    told = 0
    for item in list(bag):
        if keep_token_hash is not None and item.token_hash == keep_token_hash:
            continue
        if (username is not None and item.username == username) or (
            token_hash is not None and item.token_hash == token_hash
        ):
            bag.discard(item)
            item.ended.set()
            told += 1
    return told
