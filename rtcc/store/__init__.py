"""The store: SQLite (embedded) or PostgreSQL + PostGIS (production).

Layout
------
* :mod:`rtcc.store.tables` — the SQLAlchemy tables, shared by both dialects.
* :mod:`rtcc.store.db` — :class:`Store`: engine, sessions, one writer on SQLite.
* :mod:`rtcc.store.migrate` — Alembic configured in code: :func:`upgrade`,
  :func:`downgrade`, :func:`current`, :func:`head`, :func:`check_current`.
  The scripts are in ``rtcc/store/migrations`` (shipped in the wheel).
* :mod:`rtcc.store.partitions` — daily partitions of the PostgreSQL
  ``events`` table (:func:`ensure_event_partitions`; the app calls it daily).
* :mod:`rtcc.store.events_repo` — the event log: :func:`record_events`
  (idempotent by event id), :func:`list_events`, :func:`events_near`,
  :func:`count_events`.
* :mod:`rtcc.store.batcher` — :class:`~rtcc.store.batcher.MicroBatcher`: the items of
  concurrent writers (events, plate reads, body-cam acks) written in one transaction per batch.

Rules
-----
Repositories are plain synchronous functions taking a
:class:`sqlalchemy.orm.Session` and never commit; async code runs them through
:meth:`Store.write` / :meth:`Store.read`. The schema only changes through a
new migration in ``rtcc/store/migrations/versions`` (tables are created with
``op.create_table``, never ``metadata.create_all``), and a test checks that a
migrated database matches :data:`rtcc.store.tables.Base.metadata`.

PostgreSQL extras (not in the models): the ``postgis`` and ``pg_trgm``
extensions, ``events`` range-partitioned by ``occurred_at`` with a default
partition, and generated ``geom geometry(Point, 4326)`` columns on ``events``
and ``devices`` with GiST indexes.
"""

from rtcc.store.db import Store, make_engine
from rtcc.store.events_repo import (
    NearEvent,
    count_events,
    events_near,
    list_events,
    record_events,
    to_event,
)
from rtcc.store.migrate import check_current, current, downgrade, head, upgrade
from rtcc.store.partitions import ensure_event_partitions

__all__ = [
    "NearEvent",
    "Store",
    "check_current",
    "count_events",
    "current",
    "downgrade",
    "ensure_event_partitions",
    "events_near",
    "head",
    "list_events",
    "make_engine",
    "record_events",
    "to_event",
    "upgrade",
]
