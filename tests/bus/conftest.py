"""Fixtures for the bus tests: a started bus per engine, isolated per test.

``env`` is parametrized over the engines:

* ``memory`` — one :class:`~rtcc.bus.memory.MemoryBus`; its "peer" (another
  process's view of the bus) is the same object, since the in-process engine
  has no broker.
* ``nats`` — :class:`~rtcc.bus.nats.NatsBus` on ``RTCC_TEST_NATS_URL`` with a
  stream of its own, deleted at teardown; a peer is a second ``NatsBus`` with its
  own connection, like a second ``rtcc worker`` process. Skipped when
  ``RTCC_TEST_NATS_URL`` is unset (see the ``nats_url`` fixture in
  ``tests/conftest.py``).

Subjects live under a per-test prefix ``rtcctest.<hex>``. It is deliberately
outside ``rtcc.>``: JetStream refuses a stream whose subjects overlap another
stream's, and the production-backend tests create streams over ``rtcc.>``
while they run, so a test stream under ``rtcc.`` would collide with them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from rtcc.bus import Bus
from rtcc.bus.memory import MemoryBus
from rtcc.bus.nats import NatsBus
from tests.bus.support import BusEnv


async def delete_stream(url: str, stream: str) -> None:
    """Delete a test stream (it may already be gone)."""
    import nats
    import nats.js.errors

    nc = await nats.connect(url)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def nats_env(request: pytest.FixtureRequest) -> AsyncIterator[BusEnv]:
    """A started NatsBus with a fresh stream over ``rtcctest.<hex>.>`` (deleted afterwards)."""
    url = str(request.getfixturevalue("nats_url"))  # skips (or fails under RTCC_REQUIRE_SERVICES)
    uniq = unique()
    prefix = f"rtcctest.{uniq}"
    stream = f"RTCCTEST_{uniq.upper()}"
    subjects = (f"{prefix}.>",)  # MQTT topics rtcctest/<hex>/... land here too
    buses: list[NatsBus] = []

    async def new_bus() -> Bus:
        b = NatsBus(
            url,
            stream=stream,
            subjects=subjects,
            max_age_s=3600,
            name=f"rtcc-test-{uniq}-{len(buses)}",
            fetch_timeout_s=0.5,
            nak_delay_s=0.1,
        )
        await b.start()
        buses.append(b)
        return b

    bus = await new_bus()
    try:
        yield BusEnv("nats", bus, prefix, new_bus, stream=stream, url=url, extra={"uniq": uniq})
    finally:
        for b in reversed(buses):
            await b.stop()
        await delete_stream(url, stream)


@pytest.fixture
async def memory_env() -> AsyncIterator[BusEnv]:
    """A started MemoryBus; its peer is itself."""
    bus = MemoryBus()
    await bus.start()

    async def same() -> Bus:
        return bus

    try:
        yield BusEnv("memory", bus, f"rtcctest.{unique()}", same)
    finally:
        await bus.stop()


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
def env(request: pytest.FixtureRequest) -> BusEnv:
    """The contract fixture: one ``BusEnv`` per engine."""
    fixture = "memory_env" if request.param == "memory" else "nats_env"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]
