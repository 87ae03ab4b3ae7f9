"""Alembic environment, configured in code by :mod:`rtcc.store.migrate`.

The database comes from ``config.attributes``: an open ``connection`` (used
as is; its owner commits), an ``engine``, or a ``url``. SQLite migrations
use batch mode (``render_as_batch``) so ``ALTER`` works there.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from rtcc.store.migrate import include_name, include_object
from rtcc.store.tables import Base

config = context.config
target_metadata = Base.metadata


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
        _run(conn)
        return
    engine = config.attributes.get("engine")
    if engine is not None:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
        return
    from rtcc.store.db import make_engine

    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database given to the migrations (url, engine or connection)")
    engine = make_engine(str(url), pool_size=1)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
