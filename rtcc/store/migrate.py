"""Schema migrations (Alembic), configured in code — no ``alembic.ini``.

The scripts live in the package folder ``rtcc/store/migrations`` so they ship
in the wheel. Every function takes a database URL, an :class:`~sqlalchemy.Engine`
or a :class:`~sqlalchemy.Connection`:

* a URL or an engine: the function opens its own connection and commits;
* a connection: it is used as is and the **caller** commits (this is how an
  in-memory SQLite database or a test transaction is migrated).

``rtcc db upgrade`` calls :func:`upgrade`; the server calls
:func:`check_current` at start-up and refuses to run on an old schema.

Autogenerate filter
-------------------
PostgreSQL carries objects the models do not describe: the PostGIS ``geom``
generated columns (and their GiST indexes), the daily ``events_YYYYMMDD``
partitions plus ``events_default``, and PostGIS's own ``spatial_ref_sys``.
:func:`include_object` and :func:`include_name` hide them from
autogenerate (``env.py`` uses them, and so does :func:`compare`), so a
comparison of a migrated database with :data:`rtcc.store.tables.Base.metadata`
is empty when the two agree.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from rtcc.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic script folder inside the installed package."""

DbTarget = str | Engine | Connection
"""A database URL, an engine, or an open connection."""

GEOM_COLUMN = "geom"
SPATIAL_TABLES = frozenset(
    {
        "events",
        "devices",
        "gunshot_incidents",
        "hotlist_hits",
        "alerts",
        "packets",
        "cameras",
        "plate_reads",
        # one line per room's table with a generated geom column (add yours here)
    }
)
"""Tables that get a generated PostGIS ``geom`` column on PostgreSQL (GiST ``ix_<table>_geom/geog``)."""

_PARTITION_RE = re.compile(r"^(events|plate_reads)_(\d{8}|default)$")
_FOREIGN_TABLES = frozenset({"spatial_ref_sys"})
_EXTRA_TABLE_RE = re.compile(r"^plate_reads_fts(_\w+)?$")  # SQLite FTS5 indexes (0003, 0009, 0010) + shadows
_EXTRA_INDEXES = frozenset(
    {"ix_plate_reads_plate_trgm", "ix_plate_reads_key_time"}  # PostgreSQL only: pg_trgm GIN, key (0009)
    | {"ix_plate_reads_tokens"}  # PostgreSQL only: GIN of the pair tokens (0011)
)
_EXTRA_COLUMNS = frozenset({("plate_reads", "plate_tokens")})  # PostgreSQL only: generated tokens (0011)
_SPATIAL_INDEX_RE = re.compile(r"^ix_(" + "|".join(sorted(SPATIAL_TABLES)) + r")_(geom|geog)$")


def config(target: DbTarget | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the package's migrations.

    ``target`` is put in ``config.attributes`` (``"connection"`` or ``"url"``)
    where ``env.py`` finds it.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if isinstance(target, Connection):
        cfg.attributes["connection"] = target
    elif isinstance(target, Engine):
        cfg.attributes["engine"] = target
    elif isinstance(target, str):
        cfg.attributes["url"] = target
    return cfg


@contextlib.contextmanager
def _connect(target: DbTarget) -> Iterator[Connection]:
    """A connection to ``target``; only connections we open are closed here."""
    if isinstance(target, Connection):
        yield target
        return
    if isinstance(target, Engine):
        with target.connect() as conn:
            yield conn
        return
    from rtcc.store.db import make_engine

    engine = make_engine(target, pool_size=1)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def upgrade(target: DbTarget, revision: str = "head") -> None:
    """Migrate the database forward to ``revision`` (default: the newest)."""
    command.upgrade(config(target), revision)


def downgrade(target: DbTarget, revision: str) -> None:
    """Migrate the database back to ``revision`` (``"base"`` drops every table).

    PostgreSQL extensions (PostGIS, pg_trgm) are left installed.
    """
    command.downgrade(config(target), revision)


def head() -> str:
    """The newest revision the code knows."""
    rev = ScriptDirectory.from_config(config()).get_current_head()
    if rev is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError("no migrations found in " + str(MIGRATIONS_DIR))
    return rev


def current(target: DbTarget) -> str | None:
    """The database's revision, or None when it was never migrated."""
    with _connect(target) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_current(target: DbTarget) -> None:
    """Make sure the database schema is the one this code expects.

    Raises
    ------
    rtcc.errors.Unavailable
        When the database is unmigrated, behind, or at a revision this code
        does not know (it was migrated by a newer release).
    """
    want = head()
    try:
        have = current(target)
    except Exception as exc:
        raise Unavailable(f"cannot read the database schema revision: {exc}") from exc
    if have == want:
        return
    if have is None:
        raise Unavailable(
            "the database has no schema yet; run `rtcc db upgrade` to create it",
            details={"current": None, "head": want},
        )
    known = {s.revision for s in ScriptDirectory.from_config(config()).walk_revisions()}
    if have not in known:
        raise Unavailable(
            f"the database schema is at revision {have}, which this version of rtcc "
            f"does not know (newest known: {want}); upgrade rtcc",
            details={"current": have, "head": want},
        )
    raise Unavailable(
        f"the database schema is at revision {have} but this version needs {want}; run `rtcc db upgrade`",
        details={"current": have, "head": want},
    )


# --- autogenerate filter -------------------------------------------------------


def include_name(name: str | None, type_: str, parent_names: Mapping[Any, Any]) -> bool:
    """Skip reflected tables the models do not describe (partitions, PostGIS's)."""
    if type_ == "table" and name is not None:
        return not (_PARTITION_RE.match(name) or name in _FOREIGN_TABLES or _EXTRA_TABLE_RE.match(name))
    return True


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Skip the PostgreSQL-only extras: ``geom`` columns and their GiST indexes, the columns and
    indexes of :data:`_EXTRA_COLUMNS` and :data:`_EXTRA_INDEXES`."""
    if type_ == "table" and name is not None and not include_name(name, type_, {}):
        return False
    if not reflected or compare_to is not None:
        return True
    if type_ == "column" and name == GEOM_COLUMN:
        return getattr(getattr(obj, "table", None), "name", None) not in SPATIAL_TABLES
    if type_ == "column" and (getattr(getattr(obj, "table", None), "name", None), name) in _EXTRA_COLUMNS:
        return False
    if type_ == "index" and name is not None:
        return not (_SPATIAL_INDEX_RE.match(name) or name in _EXTRA_INDEXES)
    return True


def compare(target: DbTarget) -> list[Any]:
    """Differences between the database and the models (empty when in step).

    Uses Alembic's autogenerate comparison with :func:`include_object` and
    :func:`include_name`; each item is an Alembic diff tuple (or a list of
    them for column modifications).
    """
    import geoalchemy2  # noqa: F401  (teaches reflection the PostGIS types)

    from rtcc.store.tables import Base

    with _connect(target) as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_object": include_object,
                "include_name": include_name,
                "compare_type": True,
            },
        )
        return list(compare_metadata(ctx, Base.metadata))
