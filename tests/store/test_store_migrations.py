"""Migrations: reach head on both dialects, match the models, go down and up again."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from rtcc.errors import Unavailable
from rtcc.store import Store, migrate
from rtcc.store.tables import Base

from .conftest import DIALECTS

MODEL_TABLES = set(Base.metadata.tables)


def _tables(url: str) -> set[str]:
    eng = create_engine(url)
    try:
        names = set(inspect(eng).get_table_names())
    finally:
        eng.dispose()
    return {n for n in names if migrate.include_name(n, "table", {})}


@pytest.mark.parametrize("fresh_db", DIALECTS, indirect=True)
def test_upgrade_reaches_head_and_matches_models(fresh_db: str) -> None:
    assert migrate.current(fresh_db) is None
    migrate.upgrade(fresh_db)
    assert migrate.current(fresh_db) == migrate.head() == "0017"
    assert _tables(fresh_db) == MODEL_TABLES | {"alembic_version"}
    assert migrate.compare(fresh_db) == []
    migrate.check_current(fresh_db)  # does not raise


@pytest.mark.parametrize("fresh_db", DIALECTS, indirect=True)
def test_compare_reports_drift(fresh_db: str) -> None:
    """The autogenerate filter hides only the PostGIS extras, not real differences."""
    migrate.upgrade(fresh_db)
    eng = create_engine(fresh_db)
    try:
        with eng.begin() as c:
            c.execute(text("DROP INDEX ix_devices_type"))
    finally:
        eng.dispose()
    diffs = migrate.compare(fresh_db)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_devices_type")]


@pytest.mark.parametrize("fresh_db", DIALECTS, indirect=True)
def test_downgrade_to_base_and_upgrade_again(fresh_db: str) -> None:
    migrate.upgrade(fresh_db)
    migrate.downgrade(fresh_db, "base")
    assert migrate.current(fresh_db) is None
    assert _tables(fresh_db) == {"alembic_version"}
    migrate.upgrade(fresh_db)
    assert migrate.current(fresh_db) == migrate.head()
    assert migrate.compare(fresh_db) == []


@pytest.mark.parametrize("fresh_db", DIALECTS, indirect=True)
def test_check_current_on_fresh_db_says_run_upgrade(fresh_db: str) -> None:
    with pytest.raises(Unavailable, match="rtcc db upgrade") as exc:
        migrate.check_current(fresh_db)
    assert exc.value.status == 503
    assert exc.value.details == {"current": None, "head": migrate.head()}


@pytest.mark.parametrize("fresh_db", DIALECTS, indirect=True)
def test_check_current_on_unknown_revision(fresh_db: str) -> None:
    migrate.upgrade(fresh_db)
    eng = create_engine(fresh_db)
    try:
        with eng.begin() as c:
            c.execute(text("UPDATE alembic_version SET version_num = 'fffffffff'"))
    finally:
        eng.dispose()
    with pytest.raises(Unavailable, match="does not know"):
        migrate.check_current(fresh_db)


@pytest.mark.parametrize("fresh_db", DIALECTS, indirect=True)
def test_functions_accept_engine_and_connection(fresh_db: str) -> None:
    st = Store(fresh_db, pool_size=1)
    try:
        with pytest.raises(Unavailable):
            migrate.check_current(st.engine)
        migrate.upgrade(st.engine)
        with st.engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
            migrate.check_current(conn)
    finally:
        st.close()


def test_in_memory_sqlite_through_a_connection() -> None:
    eng = create_engine("sqlite://")
    try:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
            assert migrate.current(conn) == migrate.head()
            assert migrate.compare(conn) == []
            assert set(inspect(conn).get_table_names()) >= MODEL_TABLES
    finally:
        eng.dispose()


def test_migration_scripts_ship_in_the_package() -> None:
    folder = migrate.MIGRATIONS_DIR
    assert folder == Path(importlib.import_module("rtcc.store.migrations").__file__ or "").parent
    assert (folder / "env.py").is_file()
    assert (folder / "script.py.mako").is_file()
    assert (folder / "versions" / "0001_initial.py").is_file()
    importlib.import_module("rtcc.store.migrations.versions")


@pytest.mark.postgres
@pytest.mark.parametrize("fresh_db", DIALECTS[1:], indirect=True)
def test_postgres_extras(fresh_db: str) -> None:
    migrate.upgrade(fresh_db)
    eng = create_engine(fresh_db)
    try:
        with eng.connect() as c:
            exts = set(c.execute(text("SELECT extname FROM pg_extension")).scalars())
            assert {"postgis", "pg_trgm"} <= exts
            kind = c.execute(text("SELECT relkind FROM pg_class WHERE relname = 'events'"))
            assert kind.scalar_one() == "p"
            key = c.execute(text("SELECT pg_get_partkeydef('events'::regclass)")).scalar_one()
            assert key == "RANGE (occurred_at)"
            gen = c.execute(
                text(
                    "SELECT table_name, is_generated, udt_name FROM information_schema.columns "
                    "WHERE column_name = 'geom' AND table_schema = current_schema() "
                    "AND table_name IN ('events', 'devices') ORDER BY table_name"
                )
            ).all()
            assert [tuple(r) for r in gen] == [
                ("devices", "ALWAYS", "geometry"),
                ("events", "ALWAYS", "geometry"),
            ]
            idx = set(
                c.execute(
                    text(
                        "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gist%' "
                        "AND tablename IN ('events', 'devices')"
                    )
                ).scalars()
            )
            assert idx == {"ix_events_geom", "ix_events_geog", "ix_devices_geom", "ix_devices_geog"}
            # geom follows lat/lon, and is NULL without a position
            c.execute(
                text(
                    "INSERT INTO devices (id, type, name, status, lat, lon, attributes, "
                    "rejected_count, created_at) VALUES ('d1', 'camera', '', 'unknown', "
                    "33.5, -86.8, '{}', 0, now()), ('d2', 'camera', '', 'unknown', NULL, "
                    "NULL, '{}', 0, now())"
                )
            )
            rows = c.execute(text("SELECT id, ST_AsText(geom), ST_SRID(geom) FROM devices ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [("d1", "POINT(-86.8 33.5)", 4326), ("d2", None, None)]
            c.rollback()
    finally:
        eng.dispose()
    migrate.downgrade(fresh_db, "base")
    eng = create_engine(fresh_db)
    try:
        with eng.connect() as c:
            left = c.execute(
                text("SELECT count(*) FROM pg_class WHERE relname LIKE 'events%' AND relkind IN ('r', 'p')")
            ).scalar_one()
            assert left == 0
            exts = set(c.execute(text("SELECT extname FROM pg_extension")).scalars())
            assert {"postgis", "pg_trgm"} <= exts  # extensions are left installed
    finally:
        eng.dispose()
