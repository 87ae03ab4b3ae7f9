"""Fixtures shared by the plate tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rtcc.store import Store
from rtcc.store.migrate import upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on SQLite, and on PostgreSQL when the test services are there."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'plates.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    st = Store(url, pool_size=3)
    yield st
    st.close()
