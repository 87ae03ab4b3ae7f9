"""A clean stop of the embedded center keeps every event the bus accepted (session 14).

``Center.stop`` stopped the processors before the in-process bus: the recorder's queue group lost its
members one by one, and the last one to leave took the group's queue, with every message still waiting
in it, along — events ingest had answered 2xx for were never stored. The bus drained only afterwards.
Now the center drains the bus (bounded by ``server.shutdown_grace_s``) before each processor stops, and
the bus counts (``dropped``) and logs what it still has to discard.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rtcc.app import Center
from rtcc.bus.memory import MemoryBus
from rtcc.events import DeviceHeartbeat
from tests.conftest import make_settings, stop_or_report


def _center(tmp_path: Path, request: pytest.FixtureRequest) -> Center:
    # a generous bound: the drain normally ends as soon as the queue is empty
    settings = make_settings(tmp_path, "embedded", request, server={"shutdown_grace_s": 600})
    return Center(settings, auto_migrate=True, processors=("recorder",), with_api=False)


def _stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            q = text("SELECT count(*) FROM events WHERE type = 'device_heartbeat'")
            return int(c.execute(q).scalar_one())
    finally:
        engine.dispose()


async def _publish(center: Center, n: int) -> None:
    assert center.bus is not None
    for _ in range(n):
        ev = DeviceHeartbeat(source="s1", device="s1", device_type="acoustic_sensor")
        await center.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))  # what ingest does


async def test_a_clean_stop_stores_every_event_the_bus_accepted(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    center = _center(tmp_path, request)
    url = center.settings.database_url
    await center.start()
    try:
        await _publish(center, 5000)
    finally:
        await stop_or_report(center)
    assert _stored(url) == 5000


async def test_a_stop_waits_for_a_store_locked_by_another_process(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    center = _center(tmp_path, request)
    url = center.settings.database_url
    await center.start()
    db_file = center.settings.data_dir / "rtcc.db"
    assert db_file.exists()
    other = sqlite3.connect(str(db_file), isolation_level=None)  # e.g. `rtcc retention run`
    try:
        other.execute("BEGIN IMMEDIATE")
        try:
            await _publish(center, 2000)
        finally:
            # the other process finishes soon after the stop began
            asyncio.get_running_loop().call_later(0.5, other.rollback)
            await stop_or_report(center)
    finally:
        other.close()
    assert _stored(url) == 2000


async def test_messages_discarded_with_a_queue_are_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MemoryBus()
    await bus.start()
    release = asyncio.Event()
    handled: list[bytes] = []

    async def slow(subject: str, payload: bytes) -> None:
        await release.wait()
        handled.append(payload)

    sub = await bus.subscribe("rtcc.events.x", slow, group="g")
    for i in range(5):
        await bus.publish("rtcc.events.x", str(i).encode())
    await asyncio.sleep(0)
    # one message is being handled, four wait in the group's queue; its only member leaves
    await sub.stop()
    assert bus.stats().dropped == 4
    with caplog.at_level(logging.WARNING, logger="rtcc.bus.memory"):
        await bus.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "4 queued message(s)" in warnings[0], warnings
    assert handled == []
