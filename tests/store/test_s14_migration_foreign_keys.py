"""SQLite migrations keep the rows of child tables when batch mode rebuilds a parent (session 14).

The store turns ``PRAGMA foreign_keys`` on for every connection, the migrations' too. Batch mode
rebuilds a table by copy, drop and rename; dropping ``cameras`` (0016 -> 0015) deleted every footage
request, dropping ``users`` (0015 -> 0014) every session (``ON DELETE CASCADE``). ``env.py`` now runs
SQLite migrations with foreign keys off, then checks them (``PRAGMA foreign_key_check``).

The revisions are found through Alembic's script directory, not written here: new migrations may
follow these.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, text
from sqlalchemy import types as T

from rtcc.store import migrate
from rtcc.store.db import make_engine


def _value(col: Any) -> Any:
    t = col.type
    if isinstance(t, T.Boolean):
        return False
    if isinstance(t, T.Integer):
        return 1
    if isinstance(t, T.Float | T.Numeric):
        return 1.5
    if isinstance(t, T.DateTime):
        return dt.datetime(2026, 1, 1)
    if isinstance(t, T.JSON):
        return {}
    if isinstance(t, T.LargeBinary):
        return b"x"
    if isinstance(t, T.String | T.Text):
        n = getattr(t, "length", None) or 32
        return uuid.uuid4().hex[: min(n, 32)]
    return "1"


def _counted(name: str) -> bool:
    return name != "alembic_version" and not name.startswith("plate_reads_fts")


def _fill(engine: Engine) -> None:
    """One more row in every table (a child's foreign keys point at its parent's row)."""
    md = MetaData()
    md.reflect(engine)
    rows: dict[str, dict[str, Any]] = {}
    with engine.begin() as c:
        for table in md.sorted_tables:
            if not _counted(table.name):
                continue
            row: dict[str, Any] = {}
            for col in table.columns:
                if col.foreign_keys:
                    fk = next(iter(col.foreign_keys))
                    row[col.name] = rows[fk.column.table.name][fk.column.name]
                elif col.primary_key and isinstance(col.type, T.Integer):
                    continue  # autoincrement
                else:
                    row[col.name] = _value(col)
            c.execute(table.insert().values(**row))
            rows[table.name] = dict(c.execute(table.select().limit(1)).mappings().one())


def _counts(engine: Engine) -> dict[str, int]:
    names = [n for n in inspect(engine).get_table_names() if _counted(n)]
    with engine.connect() as c:
        return {n: int(c.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one()) for n in names}


def _down_revision(script: ScriptDirectory, rev: str) -> str:
    down = script.get_revision(rev).down_revision
    assert isinstance(down, str), f"{rev} has no single predecessor ({down!r})"
    return down


@pytest.fixture
def filled(tmp_path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    _fill(engine)
    counts = _counts(engine)
    assert counts["sessions"] == counts["footage_requests"] == 1
    assert min(counts.values()) >= 1, counts  # (some tables hold a row the migrations seed)
    return url, engine


def test_downgrades_to_0014_keep_every_row_of_the_surviving_tables(filled: tuple[str, Engine]) -> None:
    url, engine = filled
    script = ScriptDirectory.from_config(migrate.config())
    rev = migrate.head()
    steps = 0
    while rev != "0014":  # head -> ... -> 0016 -> 0015 -> 0014, one revision at a time
        down = _down_revision(script, rev)
        before = _counts(engine)
        migrate.downgrade(url, down)
        assert migrate.current(url) == down
        after = _counts(engine)
        changed = {t: (n, after[t]) for t, n in before.items() if t in after and after[t] != n}
        assert changed == {}, f"downgrade {rev} -> {down} changed row counts: {changed}"
        rev = down
        steps += 1
    assert steps >= 2
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    after = _counts(engine)
    assert after["sessions"] == after["footage_requests"] == 1
    assert migrate.compare(url) == []
    engine.dispose()


def test_foreign_keys_are_on_again_after_migrating_through_an_engine(filled: tuple[str, Engine]) -> None:
    _, engine = filled
    script = ScriptDirectory.from_config(migrate.config())
    migrate.downgrade(engine, _down_revision(script, migrate.head()))
    migrate.upgrade(engine)
    with engine.connect() as c:  # a pooled connection the migrations used
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_a_dangling_foreign_key_after_the_migrations_fails_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    script = ScriptDirectory.from_config(migrate.config())
    migrate.upgrade(url, _down_revision(script, migrate.head()))
    engine = make_engine(url)
    md = MetaData()
    md.reflect(engine, only=["sessions"])
    table = md.tables["sessions"]
    row = {
        col.name: _value(col)
        for col in table.columns
        if not (col.primary_key and isinstance(col.type, T.Integer))
    }  # its user_id names no user
    with engine.connect() as c:
        c.exec_driver_sql("PRAGMA foreign_keys=OFF")
        c.execute(table.insert().values(**row))
        c.commit()
    engine.dispose()
    with pytest.raises(RuntimeError, match="foreign key points at no row"):
        migrate.upgrade(url)
