"""A group consumer's close always ends, even when an earlier close was cancelled half-way.

Found by the stop guard of the test fixtures (``tests.conftest.stop_or_report``): a fresh-clone run
hung in ``Center.stop()`` with the bus's stop waiting in ``_GroupConsumer.close`` for an earlier
close that had been cancelled and so never marked the consumer closed.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from rtcc.bus.nats import NatsBus
from tests.bus.support import BusEnv

pytestmark = pytest.mark.nats


async def test_a_cancelled_close_does_not_make_the_bus_stop_wait_for_ever(nats_env: BusEnv) -> None:
    bus = nats_env.bus
    assert isinstance(bus, NatsBus)

    async def handler(subject: str, data: bytes) -> None:
        return None

    await bus.subscribe(nats_env.subject("work"), handler, group="workers")
    (consumer,) = list(bus._consumers.values())
    closing = asyncio.ensure_future(consumer.close())
    await asyncio.sleep(0.05)  # inside its wait for the pull loop's current fetch
    closing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await closing
    # the bus's stop closes the consumer again: it must not wait for the cancelled close
    await asyncio.wait_for(bus.stop(), 60)
