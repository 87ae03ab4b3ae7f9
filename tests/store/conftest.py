"""Fixtures for the store tests: real SQLite files and real PostgreSQL databases.

PostgreSQL tests need ``RTCC_TEST_PG_URL`` (``eval "$(bash scripts/services.sh
start)"``); each gets a database of its own, ``rtcc_t_<hex>``, created with
PostGIS and dropped afterwards, because migrations create extensions and
partitions.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rtcc.store import Store, migrate

PG_URL = os.environ.get("RTCC_TEST_PG_URL")
NO_PG = 'RTCC_TEST_PG_URL is not set (start services: eval "$(bash scripts/services.sh start)")'

DIALECTS = [
    "sqlite",
    pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.skipif(not PG_URL, reason=NO_PG)]),
]


def _server_admin_url() -> str:
    assert PG_URL is not None
    return make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Make fresh PostGIS-enabled databases; all are dropped at the end of the session."""
    if not PG_URL:
        pytest.skip(NO_PG)
    admin = create_engine(_server_admin_url(), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"rtcc_t_{uuid.uuid4().hex[:12]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        assert PG_URL is not None
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        eng = create_engine(url)
        try:
            with eng.begin() as c:
                c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        finally:
            eng.dispose()
        return url

    yield make
    with admin.connect() as c:
        for name in made:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL of the dialect the test is parametrized with."""
    dialect = request.param
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'rtcc.db'}"
    factory: Callable[[], str] = request.getfixturevalue("pg_database_factory")
    return factory()


@pytest.fixture(scope="module")
def migrated_pg(pg_database_factory: Callable[[], str]) -> str:
    """One migrated PostgreSQL database shared by a module's tests."""
    url = pg_database_factory()
    migrate.upgrade(url)
    return url


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty-events :class:`Store` on the parametrized dialect."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rtcc.db'}"
        migrate.upgrade(url)
    else:
        url = request.getfixturevalue("migrated_pg")
    st = Store(url, pool_size=2)
    with st.session() as s:
        s.execute(text("DELETE FROM events"))
    try:
        yield st
    finally:
        st.close()
