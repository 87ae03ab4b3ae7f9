"""The bus interface every engine implements."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[[str, bytes], Awaitable[None]]
"""An async handler: ``await handler(subject, payload)``. Raising means "not handled"."""


@dataclass
class BusStats:
    """Counters an engine exposes (for the dashboard and /metrics)."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    handler_errors: int = 0
    redelivered: int = 0
    backpressure_waits: int = 0
    per_subscription: dict[str, dict[str, int]] = field(default_factory=dict)


class Subscription(abc.ABC):
    """A live subscription; ``await sub.stop()`` ends it."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


class Bus(abc.ABC):
    """Publish bytes on subjects; subscribe handlers, optionally in queue groups."""

    engine: str = "abstract"

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect / start delivery. Idempotent."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop subscriptions, drain what can be drained, disconnect."""

    @abc.abstractmethod
    async def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None) -> None:
        """Publish ``payload`` on ``subject``.

        ``msg_id`` lets engines that support it (JetStream) drop duplicate
        publishes of the same event.
        """

    @abc.abstractmethod
    async def subscribe(self, subject: str, handler: Handler, *, group: str | None = None) -> Subscription:
        """Call ``handler`` for messages on ``subject`` (wildcards allowed).

        With ``group``, each message goes to one member of the group and is
        acknowledged only after the handler returns (JetStream redelivers on
        error or crash). Without, every subscriber receives every message.
        """

    @abc.abstractmethod
    def stats(self) -> BusStats:
        """Current counters."""

    async def healthy(self) -> bool:
        """Whether the engine can carry messages right now."""
        return True


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` the remaining tokens (at least one).

    >>> subject_matches("rtcc.events.>", "rtcc.events.pulse")
    True
    >>> subject_matches("rtcc.sensors.*.pulse", "rtcc.sensors.s1.heartbeat")
    False
    """
    p = pattern.split(".")
    s = subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s):
            return False
        if tok != "*" and tok != s[i]:
            return False
    return len(p) == len(s)
