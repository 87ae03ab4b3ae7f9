"""Fixtures for the oversight tests: a real store on SQLite and on PostgreSQL.

The ``store`` fixture runs each test twice: on a fresh SQLite file, and on
PostgreSQL (when ``RTCC_TEST_PG_URL`` is set) in a schema of its own created
for the test session and dropped at its end; tables there are emptied
between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rtcc.oversight import passwords
from rtcc.store.db import Store
from rtcc.store.tables import Base

SECRET = b"test-audit-secret-0123456789abcdef"

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2id with small parameters, so tests that log in many times stay quick."""
    monkeypatch.setattr(passwords, "_HASHER", FAST_HASHER)
    passwords._dummy_hash.cache_clear()
    yield
    passwords._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path starts with a fresh schema holding the tables."""
    base = os.environ.get("RTCC_TEST_PG_URL")
    if not base:
        pytest.skip("RTCC_TEST_PG_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema},public"})
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with empty tables, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'rtcc.db'}")
        Base.metadata.create_all(s.engine)
    else:
        s = Store(request.getfixturevalue("pg_url"), pool_size=5)
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with s.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield s
    finally:
        s.close()
