"""The bus interface every engine implements."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import sqlalchemy.exc

from rtcc.errors import Unavailable

Handler = Callable[[str, bytes], Awaitable[None]]
"""An async handler: ``await handler(subject, payload)``. Raising means "not handled".

A handler that raises one of :data:`TRANSIENT_ERRORS` says "not *yet*": a
dependency (the store, the network) is down, not the message bad. See
:func:`is_transient`.
"""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Unavailable,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
    OSError,
)
"""Exceptions that mean "a dependency is unavailable", not "this message is bad".

* :class:`rtcc.errors.Unavailable` — raised on purpose when the store or bus is down;
* SQLAlchemy's ``OperationalError`` (connection refused or lost, server shutting
  down, deadlock, serialization failure, statement timeout), ``InterfaceError``
  (the driver's connection is unusable), ``DisconnectionError`` (pool
  pre-ping found the connection dead) and ``TimeoutError`` (no pooled
  connection in time);
* ``OSError``, which includes ``ConnectionError`` and ``TimeoutError``.

Everything else (``ValueError``, ``IntegrityError``, ``DataError``, a bug) is a
failure of the message: retried a few times, then given up.
"""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means "retry later" rather than "this message cannot be handled".

    Parameters
    ----------
    exc : BaseException
        What a handler raised.

    Returns
    -------
    bool
        ``True`` for an instance of :data:`TRANSIENT_ERRORS`, or an exception
        group whose every member is transient.

    Examples
    --------
    >>> is_transient(ConnectionRefusedError("store down"))
    True
    >>> is_transient(ValueError("bad payload"))
    False
    """
    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient(e) for e in exc.exceptions)
    return isinstance(exc, TRANSIENT_ERRORS)


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
