"""The event bus: one interface, two engines.

* :class:`~rtcc.bus.memory.MemoryBus` — in-process, asyncio, bounded queues
  with drop counters (the embedded default).
* :class:`~rtcc.bus.nats.NatsBus` — NATS JetStream: a durable stream over
  ``rtcc.>``, queue-group consumers that ack after handling (at least once).

Subjects use NATS syntax: tokens separated by ``.``, ``*`` matches one token,
``>`` matches the rest. A subscription with a ``group`` shares its messages
with the group's other members (each message handled once per group); one
without a group receives every message (broadcast, e.g. the WebSocket hub).

Handlers receive raw bytes and the subject; delivery is at least once, so
handlers are idempotent (events carry ids).
"""

from rtcc.bus.base import Bus, BusStats, Handler, Subscription, subject_matches

__all__ = ["Bus", "BusStats", "Handler", "Subscription", "make_bus", "subject_matches"]


def make_bus(engine: str, **kwargs: object) -> Bus:
    """Build the bus engine named by ``engine`` (``memory`` or ``nats``)."""
    if engine == "memory":
        from rtcc.bus.memory import MemoryBus

        return MemoryBus(**kwargs)  # type: ignore[arg-type]
    if engine == "nats":
        from rtcc.bus.nats import NatsBus

        bus: Bus = NatsBus(**kwargs)  # type: ignore[arg-type]
        return bus
    raise ValueError(f"unknown bus engine {engine!r}; use 'memory' or 'nats'")
