"""Alembic environment, configured in code by :mod:`rtcc.store.migrate`.

The database comes from ``config.attributes``: an open ``connection`` (used
as is; its owner commits), an ``engine``, or a ``url``. SQLite migrations
use batch mode (``render_as_batch``) so ``ALTER`` works there, with foreign-key
enforcement off (batch mode copies, drops and renames tables: with it on,
dropping a parent table cascaded deletes into its children), checked with
``PRAGMA foreign_key_check`` afterwards and turned back on.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from rtcc.store.migrate import include_name, include_object
from rtcc.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _sqlite_foreign_keys_off(connection: Connection) -> bool:
    """Turn SQLite's foreign-key enforcement off for the migrations; whether it was on.

    :mod:`rtcc.store.db` turns it on for every connection. Batch mode rebuilds a table by copy, drop
    and rename; with enforcement on, dropping a parent table deletes its children's rows (``ON DELETE
    CASCADE``) or fails. The pragma does nothing inside a transaction, so it is set before the
    migrations begin theirs (:func:`_sqlite_foreign_key_check` checks the result afterwards).
    """
    if connection.dialect.name != "sqlite":
        return False
    owned = not connection.in_transaction()
    was_on = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    still_on = False
    if was_on:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        still_on = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    if owned:
        connection.commit()  # end the transaction the pragmas began (no database transaction is open)
    if still_on:
        raise RuntimeError(
            "SQLite migrations must run with foreign keys off, which cannot be changed inside a "
            "transaction: commit the connection before migrating it"
        )
    return was_on


def _sqlite_foreign_key_check(connection: Connection) -> None:
    """Fail when the migrations left a row pointing at a missing parent (``PRAGMA foreign_key_check``)."""
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if rows:
        shown = "; ".join(f"{r[0]} row {r[1]} -> {r[2]}" for r in rows[:10])
        raise RuntimeError(
            f"the migrations left {len(rows)} row(s) whose foreign key points at no row: {shown}"
        )


def _sqlite_foreign_keys_on(connection: Connection) -> None:
    """Turn enforcement back on; ends any open transaction first (the pragma is a no-op inside one)."""
    if connection.in_transaction():
        connection.rollback()
    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    connection.commit()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            _sqlite_foreign_key_check(connection)


def _run_and_commit(connection: Connection) -> None:
    """Run the migrations on a connection of ours, commit, and leave it as we found it."""
    restore = _sqlite_foreign_keys_off(connection)
    try:
        _run(connection)
        connection.commit()
    finally:
        if restore:  # after the commit (or the rollback of a failure): it may go back to a pool
            _sqlite_foreign_keys_on(connection)


def run_migrations_offline() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=bool(url and str(url).startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        # the caller's connection, its owner commits: foreign keys are back on at once unless a
        # database transaction is still open (on SQLite each migration commits its own, unless the
        # caller had begun one), else after the next one ends, when its owner sets them again
        restore = _sqlite_foreign_keys_off(conn)
        _run(conn)
        if restore:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        return
    engine = config.attributes.get("engine")
    if engine is not None:
        with engine.connect() as connection:
            _run_and_commit(connection)
        return
    from rtcc.store.db import make_engine

    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database given to the migrations (url, engine or connection)")
    engine = make_engine(str(url), pool_size=1)
    try:
        with engine.connect() as connection:
            _run_and_commit(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
