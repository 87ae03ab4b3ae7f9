"""PostgreSQL specifics: daily partitions of the events table, the spatial index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from rtcc.events import Pulse
from rtcc.store import Store, count_events, ensure_event_partitions, record_events
from rtcc.store.events_repo import _near_pg_stmt
from rtcc.store.partitions import DEFAULT_PARTITION, event_partitions, partition_name

from .conftest import NO_PG, PG_URL
from .test_store_events_repo import CENTRE, destination, incident, pulse, record

TODAY = datetime.now(UTC).date()


def where(s: Session, ev: Pulse) -> str:
    """The partition (table) the event's row is stored in."""
    return str(
        s.execute(
            text("SELECT tableoid::regclass::text FROM events WHERE event_id = :id"),
            {"id": ev.event_id},
        ).scalar_one()
    )


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


@pytest.fixture
def pg(migrated_pg: str) -> Iterator[Store]:
    st = Store(migrated_pg, pool_size=2)
    with st.session() as s:
        s.execute(text("DELETE FROM events"))
    yield st
    st.close()


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason=NO_PG)
class TestPostgres:
    def test_migration_made_today_minus_2_to_plus_7_and_default(self, pg: Store) -> None:
        parts = pg.run(event_partitions)
        days = [p.day for p in parts if p.day is not None]
        for i in range(-2, 8):
            assert TODAY + timedelta(days=i) in days
        assert parts[-1].name == DEFAULT_PARTITION and parts[-1].day is None

    def test_rows_land_in_their_days_partition(self, pg: Store) -> None:
        today = pulse(0, at=at_noon(TODAY))
        midnight = pulse(1, at=datetime.combine(TODAY, time(0), tzinfo=UTC))
        tomorrow = pulse(2, at=at_noon(TODAY + timedelta(days=1)))
        far = pulse(3, at=datetime(2100, 1, 1, tzinfo=UTC))
        assert pg.run(lambda s: record_events(s, [today, midnight, tomorrow, far])) == 4
        with pg.session() as s:
            assert where(s, today) == partition_name(TODAY)
            assert where(s, midnight) == partition_name(TODAY)
            assert where(s, tomorrow) == partition_name(TODAY + timedelta(days=1))
            assert where(s, far) == DEFAULT_PARTITION
        # a duplicate hits the primary key in its partition
        assert pg.run(lambda s: record_events(s, [today, tomorrow, far])) == 0
        assert pg.run(count_events) == 4

    def test_ensure_is_idempotent(self, pg: Store) -> None:
        start = TODAY + timedelta(days=20)
        made = pg.run(lambda s: ensure_event_partitions(s, start, 3))
        assert made == [partition_name(start + timedelta(days=i)) for i in range(3)]
        before = pg.run(event_partitions)
        assert pg.run(lambda s: ensure_event_partitions(s, start, 3)) == []
        assert pg.run(lambda s: ensure_event_partitions(s, start - timedelta(days=1), 5)) == [
            partition_name(start - timedelta(days=1)),
            partition_name(start + timedelta(days=3)),
        ]
        after = {p.name for p in pg.run(event_partitions)}
        assert {p.name for p in before} < after
        assert pg.run(lambda s: ensure_event_partitions(s, start, 0)) == []

    def test_ensure_moves_rows_out_of_the_default_partition(self, pg: Store) -> None:
        day = TODAY + timedelta(days=40)
        early = pulse(0, at=datetime.combine(day, time(0), tzinfo=UTC))
        late = pulse(1, at=datetime.combine(day, time(23, 59, 59, 999999), tzinfo=UTC))
        next_day = pulse(2, at=datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))
        pg.run(lambda s: record_events(s, [early, late, next_day]))
        with pg.session() as s:
            assert {where(s, e) for e in (early, late, next_day)} == {DEFAULT_PARTITION}
        assert pg.run(lambda s: ensure_event_partitions(s, day, 1)) == [partition_name(day)]
        with pg.session() as s:
            assert where(s, early) == where(s, late) == partition_name(day)
            assert where(s, next_day) == DEFAULT_PARTITION
            row = s.execute(
                text("SELECT ST_Y(geom), ST_X(geom), payload->>'source' FROM events WHERE event_id = :i"),
                {"i": early.event_id},
            ).one()
            assert tuple(row) == (pytest.approx(CENTRE[0]), pytest.approx(CENTRE[1]), "ac-1")
        assert pg.run(count_events) == 3
        assert pg.run(lambda s: record_events(s, [early, late, next_day])) == 0

    def test_ensure_on_a_connection(self, pg: Store) -> None:
        day = TODAY + timedelta(days=60)
        with pg.engine.begin() as conn:
            assert ensure_event_partitions(conn, day, 2) == [
                partition_name(day),
                partition_name(day + timedelta(days=1)),
            ]
        with pg.engine.connect() as conn:
            assert ensure_event_partitions(conn, day, 2) == []

    def test_events_near_uses_the_spatial_index_on_postgres(self, pg: Store) -> None:
        record(pg, [incident(*destination(*CENTRE, b, 300.0)) for b in range(0, 360, 10)])
        stmt = _near_pg_stmt(*CENTRE, 1000.0, [], 1000)
        sql = str(stmt.compile(dialect=pg.engine.dialect, compile_kwargs={"literal_binds": True}))
        with pg.session() as s:
            s.execute(text("ANALYZE events"))
            s.execute(text("SET LOCAL enable_seqscan = off"))  # so a missing index shows as Seq Scan
            plan = "\n".join(s.execute(text("EXPLAIN " + sql)).scalars())
        assert "Seq Scan" not in plan
        assert "Index Cond: ((geom)::geography &&" in plan


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_partitions_are_a_no_op_on_sqlite(store: Store) -> None:
    assert store.run(lambda s: ensure_event_partitions(s, TODAY, 10)) == []
    assert store.run(event_partitions) == []
    with pytest.raises(ValueError):
        store.run(lambda s: ensure_event_partitions(s, TODAY, -1))


def test_partition_name() -> None:
    assert partition_name(date(2025, 3, 9)) == "events_20250309"
