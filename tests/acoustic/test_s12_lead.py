"""One acoustic processor takes pulses; a second stands by and takes over (production audit, session 12).

Two ``rtcc worker acoustic`` processes shared the pulses of one gunfire through the JetStream queue
group: each saw part of them, and one shot became two incidents (15 and 9 sensors) or none. On
PostgreSQL the processor now holds an advisory lock (the lead) while it takes pulses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from rtcc.acoustic.pipeline import AcousticPipeline
from rtcc.bus.memory import MemoryBus
from rtcc.metrics import Metrics
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from tests.helpers import eventually


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on SQLite, and on PostgreSQL when the test services are there."""
    url = f"sqlite:///{tmp_path / 'a.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    st = Store(url, pool_size=3)
    yield st
    st.close()


async def test_a_second_acoustic_processor_stands_by_until_the_lead_stops(store: Store) -> None:
    if not store.is_postgres:
        pytest.skip("one process by construction on SQLite")
    bus = MemoryBus()
    await bus.start()
    first = AcousticPipeline(store, bus, Metrics(), lead_retry_s=0.1, members=2)
    second = AcousticPipeline(store, bus, Metrics(), lead_retry_s=0.1, members=2)
    await first.start()
    try:
        await second.start()
        try:
            assert first.leading and not second.leading
            await first.stop()

            async def took_over() -> bool:
                return second.leading

            await eventually(took_over, what="the standby taking the lead")
        finally:
            await second.stop()
    finally:
        await first.stop()
        await bus.stop()


async def test_on_sqlite_the_processor_leads_at_once(store: Store) -> None:
    bus = MemoryBus()
    await bus.start()
    pipe = AcousticPipeline(store, bus, Metrics(), members=2)
    await pipe.start()
    try:
        assert pipe.leading
    finally:
        await pipe.stop()
        await bus.stop()


async def test_a_lead_whose_connection_broke_stops_taking_pulses(store: Store) -> None:
    """The lock lives with its connection: once that breaks another processor may lead, so two
    processors must never take pulses at once."""
    if not store.is_postgres:
        pytest.skip("one process by construction on SQLite")
    bus = MemoryBus()
    await bus.start()
    first = AcousticPipeline(store, bus, Metrics(), lead_retry_s=0.1, members=2)
    second = AcousticPipeline(store, bus, Metrics(), lead_retry_s=0.1, members=2)
    await first.start()
    await second.start()
    try:
        assert first.leading and not second.leading
        conn = first._lead_conn
        assert conn is not None
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        conn.commit()
        with store.engine.connect() as admin:  # what a database restart does: the session ends, the lock goes
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})

        async def handed_over() -> bool:
            return second.leading and not first.leading

        await eventually(handed_over, what="the lead passed on, the old lead standing by")
    finally:
        await second.stop()
        await first.stop()
        await bus.stop()
