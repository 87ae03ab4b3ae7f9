"""Case links and outcomes name UUID records in canonical text.

``case_links.ref_id`` and ``outcomes.ref_id`` were stored as typed, and ``uuid.UUID`` accepts upper
case, no hyphens and ``urn:uuid:``: retention compared a plate read's id with the link's text and
deleted a read linked to an open case, and the same outcome sent in four spellings was four rows.
The ledger now stores ``str(UUID(x))`` (:func:`rtcc.ops.ledger.canonical_ref_id`); this revision
rewrites the older rows the same way (every ``ref_id`` that parses as a UUID). Rows that become
duplicates of each other (same case, ref type, canonical ref id and, for outcomes, category) are
merged: the earliest (lowest id) stays, the others are deleted. Python does the canonicalisation, in
plain SQLAlchemy Core statements, so it runs the same on SQLite and PostgreSQL.

Downgrade leaves the rows as they are: canonical text is a valid spelling for the older code.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 500


def _canonical(ref_id: str) -> str:
    try:
        return str(uuid.UUID(ref_id))
    except (ValueError, TypeError, AttributeError):
        return ref_id


def _rewrite(bind: sa.engine.Connection, name: str, key: tuple[str, ...]) -> None:
    """Canonicalise ``name``'s ``ref_id`` and merge the rows that then share ``key`` (earliest kept)."""
    t = sa.table(name, sa.column("id"), *(sa.column(c) for c in key))
    keepers: dict[tuple[Any, ...], tuple[int, str]] = {}
    drop: list[int] = []
    result = bind.execute(sa.select(t.c.id, *(t.c[c] for c in key)).order_by(t.c.id))
    for row in result:
        values = dict(zip(("id", *key), row, strict=True))
        ref_id = str(values["ref_id"])
        canon = _canonical(ref_id)
        k = tuple(canon if c == "ref_id" else values[c] for c in key)
        if k in keepers:
            drop.append(int(values["id"]))
        else:
            keepers[k] = (int(values["id"]), ref_id)
    # deletes first: a keeper's new text may be a dropped row's (e.g. the canonical row came later)
    for i in range(0, len(drop), _CHUNK):
        bind.execute(sa.delete(t).where(t.c.id.in_(drop[i : i + _CHUNK])))
    for k, (row_id, ref_id) in keepers.items():
        canon = k[key.index("ref_id")]
        if canon != ref_id:
            bind.execute(sa.update(t).where(t.c.id == row_id).values(ref_id=canon))


def upgrade() -> None:
    bind = op.get_bind()
    _rewrite(bind, "case_links", ("case_id", "ref_type", "ref_id"))
    _rewrite(bind, "outcomes", ("case_id", "ref_type", "ref_id", "category"))


def downgrade() -> None:
    pass
