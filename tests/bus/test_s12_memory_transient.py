"""The in-process bus waits out a store that is locked or down, as the NATS engine does (session 12).

The embedded center's bus gave a message up after ``max_deliver`` (3) immediate tries whatever the
failure: a SQLite "database is locked" for a moment under load lost the event.
"""

from __future__ import annotations

import sqlalchemy.exc

from rtcc.bus.memory import MemoryBus
from tests.helpers import eventually


async def test_a_transient_failure_is_retried_until_it_passes() -> None:
    bus = MemoryBus(max_deliver=1)
    await bus.start()
    tries: list[bytes] = []
    handled: list[bytes] = []

    async def handler(subject: str, payload: bytes) -> None:
        tries.append(payload)
        if len(tries) <= 4:
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        handled.append(payload)

    sub = await bus.subscribe("rtcc.events.x", handler, group="g")
    try:
        await bus.publish("rtcc.events.x", b"one")

        async def done() -> bool:
            return handled == [b"one"]

        await eventually(done, what="the message handled once the store is back")
        assert bus.stats().handler_errors == 0
    finally:
        await sub.stop()
        await bus.stop()


async def test_a_bad_message_is_still_given_up() -> None:
    bus = MemoryBus(max_deliver=2)
    await bus.start()
    tries: list[bytes] = []

    async def handler(subject: str, payload: bytes) -> None:
        tries.append(payload)
        raise ValueError("cannot parse")

    sub = await bus.subscribe("rtcc.events.y", handler, group="g")
    try:
        await bus.publish("rtcc.events.y", b"bad")

        async def given_up() -> bool:
            return bus.stats().handler_errors == 1

        await eventually(given_up, what="the bad message given up")
        assert tries == [b"bad", b"bad"]
    finally:
        await sub.stop()
        await bus.stop()
