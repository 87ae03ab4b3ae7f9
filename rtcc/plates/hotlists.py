"""The hotlist store: sources, entries, BOLOs, and the version every matcher watches.

Repository functions take a :class:`sqlalchemy.orm.Session` (run them through
``store.write`` / ``store.read``).

Atomic re-import
----------------
:func:`replace_source` deletes a source's entries and inserts the new ones
in the caller's one transaction, and bumps ``hotlist_state.version`` in the
same transaction. A reader (SQLite WAL snapshot, PostgreSQL MVCC) sees the
old list or the new one, never half of either; a failure rolls everything
back and the old list stays.

Expiry
------
An entry whose ``expires_at`` has passed is not active: :func:`active_entries`
leaves it out and the processor drops a match on it (an entry may expire
between two rebuilds of the matcher).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from rtcc.errors import Conflict, NotFound, ValidationFailed
from rtcc.plates.hotlist_import import MIN_KNOWN_CHARS, Category, ParsedEntry, entry_key, partial_problem
from rtcc.plates.matching import HotEntry, normalize_plate
from rtcc.store.tables_hotlists import HitRow, HotlistEntryRow, HotlistSourceRow, HotlistState

SourceKind = Literal["ncic", "state_csv", "custom"]

BOLO_SOURCE = "bolo"
"""The source hand-made entries (BOLOs, via the UI or API) belong to."""

SOURCE_NAME_PATTERN = r"^[A-Za-z0-9._\-]{1,64}$"

_INSERT_CHUNK = 5000
_ENTRIES = cast(Table, HotlistEntryRow.__table__)


@dataclass(frozen=True)
class SourceSummary:
    """A hotlist source and its counts (``active``: entries not expired now)."""

    name: str
    kind: str
    imported_at: datetime
    imported_by: str
    entries: int
    active: int
    errors: int


def _now() -> datetime:
    return datetime.now(UTC)


def bump_version(session: Session, now: datetime | None = None) -> int:
    """Increase the hotlist version (in the caller's transaction) and return the new one."""
    when = now or _now()
    row = session.get(HotlistState, 1, with_for_update=True)
    if row is None:
        row = HotlistState(id=1, version=0, updated_at=when)
        session.add(row)
    row.version = int(row.version) + 1
    row.updated_at = when
    session.flush()
    return int(row.version)


def hotlist_version(session: Session) -> int:
    """The current hotlist version (0 before any change)."""
    v = session.scalar(select(HotlistState.version).where(HotlistState.id == 1))
    return int(v or 0)


def replace_source(
    session: Session,
    name: str,
    kind: SourceKind,
    entries: Sequence[ParsedEntry],
    *,
    errors: int = 0,
    by: str = "",
    now: datetime | None = None,
) -> SourceSummary:
    """Replace every entry of source ``name`` with ``entries``, in the caller's transaction.

    Entries with the same plate and state as an earlier one are left out (the parsers report them
    as duplicates by line): one read makes one hit per source. An entry a hit points at keeps its id
    when the new list has it again (same plate and state), so the hit keeps its entry; a hit whose
    entry left the list shows no entry (``entry_removed``) and cannot be confirmed.

    Raises
    ------
    ValidationFailed
        When ``name`` is the BOLO source (its entries are made one by one).
    """
    if name == BOLO_SOURCE:
        raise ValidationFailed(
            f"source {BOLO_SOURCE!r} holds hand-made BOLO entries; import under another name"
        )
    when = now or _now()
    # the entries hits point at keep their ids when they come again (same plate and state): a daily
    # re-import must not cut a hit waiting for its decision off from its entry (state, reason)
    kept: dict[tuple[str, str | None], uuid.UUID] = {
        (plate, state): eid
        for eid, plate, state in session.execute(
            select(HotlistEntryRow.id, HotlistEntryRow.plate, HotlistEntryRow.state)
            .where(HotlistEntryRow.source == name)
            .where(HotlistEntryRow.id.in_(select(HitRow.entry_id).where(HitRow.entry_source == name)))
        )
    }
    session.execute(delete(HotlistEntryRow).where(HotlistEntryRow.source == name))
    unique = _first_of_each(entries)
    rows: list[dict[str, Any]] = [
        {
            "id": kept.get((e.plate, e.state)) or uuid.uuid4(),
            "source": name,
            "plate": e.plate,
            "category": e.category.value,
            "state": e.state,
            "reason": e.reason,
            "expires_at": e.expires_at,
            "created_by": by,
            "created_at": when,
            "line": e.line,
            "extra": dict(e.extra),
        }
        for e in unique
    ]
    _insert_entries(session, rows)
    src = session.get(HotlistSourceRow, name)
    if src is None:
        src = HotlistSourceRow(name=name)
        session.add(src)
    src.kind = kind
    src.imported_at = when
    src.imported_by = by
    src.entry_count = len(rows)
    src.error_count = errors
    bump_version(session, when)
    active = sum(1 for r in rows if r["expires_at"] is None or r["expires_at"] > when)
    return SourceSummary(name, kind, when, by, len(rows), active, errors)


def _first_of_each(entries: Sequence[ParsedEntry]) -> list[ParsedEntry]:
    """``entries`` without those that repeat an earlier one's plate and state, in order."""
    seen: set[tuple[str, str | None]] = set()
    out: list[ParsedEntry] = []
    for e in entries:
        key = entry_key(e.plate, e.state)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


_COLUMNS = (
    "id",
    "source",
    "plate",
    "category",
    "state",
    "reason",
    "expires_at",
    "created_by",
    "created_at",
    "line",
    "extra",
)


def _sqlite_time(dt: datetime | None) -> str | None:
    """A UTC time as :class:`~rtcc.store.tables.UTCDateTime` stores it on SQLite (naive, microseconds)."""
    return None if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert entry rows with the driver's ``executemany``.

    A million-line NCIC extract spends most of its import in per-row type
    processing when inserted through SQLAlchemy; here the values are converted
    once, as the column types would (SQLite: hex UUID, naive UTC text time,
    JSON text; PostgreSQL: native UUID, timestamptz, JSONB), about 10x faster.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):  # pragma: no cover - only the two are supported
        for i in range(0, len(rows), _INSERT_CHUNK):
            session.execute(insert(_ENTRIES), rows[i : i + _INSERT_CHUNK])
        return
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in _COLUMNS)

        def values(r: dict[str, Any]) -> tuple[Any, ...]:
            return (
                r["id"].hex,
                r["source"],
                r["plate"],
                r["category"],
                r["state"],
                r["reason"],
                _sqlite_time(r["expires_at"]),
                r["created_by"],
                _sqlite_time(r["created_at"]),
                r["line"],
                json.dumps(r["extra"]),
            )

    else:
        from psycopg.types.json import Jsonb

        marks = ", ".join("%s" for _ in _COLUMNS)

        def values(r: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(Jsonb(r[c]) if c == "extra" else r[c] for c in _COLUMNS)

    sql = f"INSERT INTO hotlist_entries ({', '.join(_COLUMNS)}) VALUES ({marks})"
    conn = session.connection()
    for i in range(0, len(rows), _INSERT_CHUNK):
        conn.exec_driver_sql(sql, [values(r) for r in rows[i : i + _INSERT_CHUNK]])


def list_sources(session: Session, now: datetime | None = None) -> list[SourceSummary]:
    """Every source with its entry counts (total and active now), by name."""
    when = now or _now()
    total = (
        select(HotlistEntryRow.source, func.count().label("n")).group_by(HotlistEntryRow.source).subquery()
    )
    active = (
        select(HotlistEntryRow.source, func.count().label("n"))
        .where(or_(HotlistEntryRow.expires_at.is_(None), HotlistEntryRow.expires_at > when))
        .group_by(HotlistEntryRow.source)
        .subquery()
    )
    q = (
        select(HotlistSourceRow, func.coalesce(total.c.n, 0), func.coalesce(active.c.n, 0))
        .outerjoin(total, total.c.source == HotlistSourceRow.name)
        .outerjoin(active, active.c.source == HotlistSourceRow.name)
        .order_by(HotlistSourceRow.name)
    )
    return [
        SourceSummary(s.name, s.kind, s.imported_at, s.imported_by, int(n), int(a), s.error_count)
        for s, n, a in session.execute(q).all()
    ]


def add_entry(
    session: Session,
    plate: str,
    category: Category | str,
    *,
    reason: str,
    created_by: str,
    expires_at: datetime | None = None,
    state: str | None = None,
    now: datetime | None = None,
) -> HotlistEntryRow:
    """Add a BOLO entry (wildcards ``?`` and ``*`` allowed) to the :data:`BOLO_SOURCE` list.

    Raises
    ------
    ValidationFailed
        When the plate has no usable characters, is longer than 10, is only
        wildcards, or the expiry is in the past.
    """
    when = now or _now()
    p = normalize_plate(plate, wildcards=True)
    fixed = p.replace("?", "").replace("*", "")
    if not fixed or len(p.replace("*", "")) > 10:
        raise ValidationFailed(
            f"plate {plate!r} is not usable: give 1-10 letters/digits "
            "('?' one unknown character, '*' any run)"
        )
    vague = partial_problem(p)
    if vague is not None:
        raise ValidationFailed(vague, details={"min_known_characters": MIN_KNOWN_CHARS})
    if expires_at is not None and expires_at <= when:
        raise ValidationFailed("expires_at is in the past; give a future time or none")
    cat = Category(category)
    _refuse_duplicate_bolo(session, p, state, when)
    src = session.get(HotlistSourceRow, BOLO_SOURCE)
    if src is None:
        src = HotlistSourceRow(name=BOLO_SOURCE, kind="custom", imported_at=when, imported_by=created_by)
        session.add(src)
        src.entry_count = 0
        src.error_count = 0
    src.entry_count = int(src.entry_count or 0) + 1
    src.imported_at = when  # the BOLO list's last change (matchers' signature, see source_signatures)
    row = HotlistEntryRow(
        id=uuid.uuid4(),
        source=BOLO_SOURCE,
        plate=p,
        category=cat.value,
        state=state,
        reason=reason,
        expires_at=expires_at,
        created_by=created_by,
        created_at=when,
        extra={},
    )
    session.add(row)
    bump_version(session, when)
    return row


def _refuse_duplicate_bolo(session: Session, plate: str, state: str | None, when: datetime) -> None:
    """Refuse a second active BOLO entry for the same plate and state (409, naming the first).

    Two entries for one vehicle make two hits and two "verify before action" alerts per read; the
    operator adding the second wants to know that the vehicle is already wanted, by whom and why.
    """
    q = select(HotlistEntryRow).where(
        HotlistEntryRow.source == BOLO_SOURCE,
        HotlistEntryRow.plate == plate,
        HotlistEntryRow.state.is_(None) if state is None else HotlistEntryRow.state == state,
        or_(HotlistEntryRow.expires_at.is_(None), HotlistEntryRow.expires_at > when),
    )
    old = session.scalars(q.order_by(HotlistEntryRow.created_at).limit(1)).first()
    if old is None:
        return
    where = f" ({state})" if state else ""
    raise Conflict(
        f"an active BOLO entry for {plate}{where} exists already: {old.id}, by {old.created_by} "
        f"({old.category}: {old.reason}). A second one would raise a second alert for every read; "
        "remove that entry first to replace it",
        details={
            "existing_entry": {
                "id": str(old.id),
                "plate": old.plate,
                "state": old.state,
                "category": old.category,
                "reason": old.reason,
                "created_by": old.created_by,
                "created_at": old.created_at.isoformat(),
                "expires_at": old.expires_at.isoformat() if old.expires_at else None,
            }
        },
    )


def delete_entry(session: Session, entry_id: uuid.UUID) -> HotlistEntryRow:
    """Delete one entry (a BOLO, or a single line of an imported list until its next import).

    Raises
    ------
    NotFound
        When there is no such entry.
    """
    row = session.get(HotlistEntryRow, entry_id)
    if row is None:
        raise NotFound(f"no hotlist entry {entry_id}")
    session.delete(row)
    session.execute(
        update(HotlistSourceRow)
        .where(HotlistSourceRow.name == row.source, HotlistSourceRow.entry_count > 0)
        .values(entry_count=HotlistSourceRow.entry_count - 1)
    )
    bump_version(session)
    return row


def get_entry(session: Session, entry_id: uuid.UUID) -> HotlistEntryRow | None:
    return session.get(HotlistEntryRow, entry_id)


def list_entries(
    session: Session,
    *,
    source: str | None = None,
    plate: str | None = None,
    include_expired: bool = False,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> list[HotlistEntryRow]:
    """Entries, newest first; ``plate`` is a prefix of the normalized plate."""
    q = select(HotlistEntryRow)
    if source is not None:
        q = q.where(HotlistEntryRow.source == source)
    if plate:
        q = q.where(HotlistEntryRow.plate.startswith(normalize_plate(plate, wildcards=True), autoescape=True))
    if not include_expired:
        when = now or _now()
        q = q.where(or_(HotlistEntryRow.expires_at.is_(None), HotlistEntryRow.expires_at > when))
    q = q.order_by(HotlistEntryRow.created_at.desc(), HotlistEntryRow.id).limit(limit).offset(offset)
    return list(session.scalars(q))


@dataclass(frozen=True)
class ActiveList:
    """What a matcher is built from: active entries, their expiries, and the version read."""

    version: int
    entries: list[HotEntry]
    expires: dict[str, datetime]


SourceSignature = tuple[int, str]
"""What identifies a source's content: its entry count and last change time (ISO text)."""


def source_signatures(session: Session) -> dict[str, SourceSignature]:
    """Per source, its :data:`SourceSignature`; a list that changed has a different one.

    Read from the small ``hotlist_sources`` table, which every change keeps:
    :func:`replace_source` sets ``imported_at`` and the count, :func:`add_entry`
    moves the BOLO list's ``imported_at`` (its last change) and count,
    :func:`delete_entry` lowers the count. Matchers use it to rebuild only the
    sources that changed (a BOLO added beside a million-line NCIC list).
    """
    out: dict[str, SourceSignature] = {}
    for name, n, at in session.execute(
        select(HotlistSourceRow.name, HotlistSourceRow.entry_count, HotlistSourceRow.imported_at)
    ):
        out[str(name)] = (int(n or 0), at.isoformat() if isinstance(at, datetime) else str(at))
    return out


@dataclass(frozen=True)
class SourceSnapshot:
    """The sources that differ from a matcher's known signatures, in one consistent read.

    ``changed`` holds the active entries of each new or changed source (its
    :class:`ActiveList`), ``gone`` the sources that no longer have entries.
    """

    version: int
    signatures: dict[str, SourceSignature]
    changed: dict[str, ActiveList]
    gone: list[str]


def changed_sources(
    session: Session, known: dict[str, SourceSignature], now: datetime | None = None
) -> SourceSnapshot:
    """Active entries of every source whose signature differs from ``known`` (all when empty)."""
    version = hotlist_version(session)
    sigs = source_signatures(session)
    changed = {
        name: active_entries(session, now, source=name)
        for name, sig in sigs.items()
        if known.get(name) != sig
    }
    return SourceSnapshot(version, sigs, changed, sorted(set(known) - set(sigs)))


def active_entries(session: Session, now: datetime | None = None, *, source: str | None = None) -> ActiveList:
    """Every entry not expired at ``now`` (of one ``source`` if given), with the hotlist version."""
    when = now or _now()
    version = hotlist_version(session)
    q = select(
        HotlistEntryRow.id,
        HotlistEntryRow.plate,
        HotlistEntryRow.category,
        HotlistEntryRow.state,
        HotlistEntryRow.expires_at,
    ).where(or_(HotlistEntryRow.expires_at.is_(None), HotlistEntryRow.expires_at > when))
    if source is not None:
        q = q.where(HotlistEntryRow.source == source)
    entries: list[HotEntry] = []
    expires: dict[str, datetime] = {}
    for eid, plate, category, state, exp in session.execute(q):
        entries.append(HotEntry(str(eid), plate, category, state))
        if exp is not None:
            expires[str(eid)] = exp
    return ActiveList(version, entries, expires)
