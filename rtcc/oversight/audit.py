"""The tamper-evident audit log: an HMAC hash chain.

Every entry ``n`` stores ``prev_hash`` (entry ``n-1``'s hash, or 64 zeros for
the first) and::

    hash = HMAC-SHA256(secret, prev_hash || canonical(entry))

where ``canonical(entry)`` is compact, key-sorted, ASCII JSON of ``seq``,
``at`` (UTC ISO 8601 with microseconds), ``actor``, ``role``, ``action``,
``resource``, ``record_id``, ``outcome``, ``purpose`` and ``details`` (see
:func:`canonical_entry`). Without the secret nobody can recompute a hash, so
an edited, inserted or deleted row shows up in :func:`verify_chain`. Deleting
the newest entries (truncating the head) leaves a valid shorter chain: compare
:attr:`VerifyReport.head_seq`/``head_hash`` with a copy kept elsewhere (an
export, a printed report) to catch that.

Concurrency
-----------
Appends must be serialized. On PostgreSQL :func:`append_audit` takes a
transaction-scoped advisory lock (:data:`ADVISORY_LOCK_KEY`) before reading
the head, so writers in any number of processes queue up; the lock is held
until the caller's transaction ends, so append the audit entry last. This
relies on READ COMMITTED (PostgreSQL's default) so the head read after the
lock sees the previous writer's commit. On SQLite every write of one process
runs on the store's single writer thread, and :func:`append_audit` takes the
database's write lock before reading the head (another process — the CLI, a
worker — may append at the same time). ``seq`` is the primary key, so a writer
that bypasses the lock fails instead of forking the chain.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from rtcc.errors import ValidationFailed
from rtcc.events import AuditEvent
from rtcc.roles import Role
from rtcc.store.tables import AuditEntry

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry."""

ADVISORY_LOCK_KEY = 0x7274_6363_6175_6474
"""PostgreSQL advisory lock id serializing appends (ASCII "rtccaudt")."""

CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "resource",
    "record_id",
    "outcome",
    "purpose",
    "details",
    "prev_hash",
    "hash",
)

_LIMITS = {
    "actor": 128,
    "role": 16,
    "action": 64,
    "resource": 64,
    "record_id": 128,
    "outcome": 32,
}

MAX_PROBLEMS = 100
"""Most problems :func:`verify_chain` lists (the first is always reported)."""


# --- canonical form --------------------------------------------------------------


def _canon_value(value: Any) -> Any:
    """Make JSON numbers stable across SQLite JSON and PostgreSQL JSONB.

    JSONB rewrites ``1e+16`` as ``10000000000000000`` (read back as an int),
    so integral floats are written as integers.
    """
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationFailed("audit details must not contain NaN or infinity")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(k): _canon_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon_value(v) for v in value]
    return str(value)


def format_at(at: datetime) -> str:
    """``at`` as hashed: UTC, ISO 8601, microseconds."""
    if at.tzinfo is None:
        raise ValidationFailed("audit time must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_entry(
    *,
    seq: int,
    at: datetime,
    actor: str,
    role: str,
    action: str,
    resource: str,
    record_id: str | None,
    outcome: str,
    purpose: str | None,
    details: Any,
) -> bytes:
    """The bytes an entry's hash covers (after ``prev_hash``).

    ``details`` is hashed as stored (None as ``{}``, what an entry without details is written
    with): a list or a string put in its place changes the hash like any other edit.
    """
    doc = {
        "seq": seq,
        "at": format_at(at),
        "actor": actor,
        "role": role,
        "action": action,
        "resource": resource,
        "record_id": record_id,
        "outcome": outcome,
        "purpose": purpose,
        "details": _canon_value({} if details is None else details),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def compute_hash(secret: bytes, prev_hash: str, canonical: bytes) -> str:
    """``HMAC-SHA256(secret, prev_hash || canonical)`` as hex."""
    return hmac.new(secret, prev_hash.encode("ascii") + canonical, hashlib.sha256).hexdigest()


def entry_hash(secret: bytes, entry: AuditEntry | _Link) -> str:
    """The hash ``entry`` should have, recomputed from its stored fields."""
    return compute_hash(
        secret,
        entry.prev_hash,
        canonical_entry(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            role=entry.role,
            action=entry.action,
            resource=entry.resource,
            record_id=entry.record_id,
            outcome=entry.outcome,
            purpose=entry.purpose,
            details=entry.details,
        ),
    )


# --- append -------------------------------------------------------------------------


def _check_text(name: str, value: str | None) -> None:
    if value is None:
        return
    if "\x00" in value:
        raise ValidationFailed(f"audit {name} must not contain NUL characters")
    limit = _LIMITS.get(name)
    if limit is not None and len(value) > limit:
        raise ValidationFailed(f"audit {name} is longer than {limit} characters")
    if limit is not None and name != "record_id" and not value:
        raise ValidationFailed(f"audit {name} must not be empty")


def head(session: Session) -> AuditEntry | None:
    """The newest entry, or ``None`` for an empty log."""
    return session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()


def _lock_chain(session: Session) -> None:
    """Serialize appends across processes until the caller's transaction ends (module docstring).

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the database's write lock, taken by a
    write that changes nothing — the driver opens the transaction only at the first write, so the
    head read without it could see a tail another process is about to extend (both would then
    insert the same ``seq``).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        session.execute(text(f"UPDATE {AuditEntry.__tablename__} SET seq = seq WHERE 0"))


def append_audit(
    session: Session,
    *,
    secret: bytes,
    actor: str,
    role: Role | str,
    action: str,
    resource: str,
    record_id: str | None = None,
    outcome: str,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain (within the caller's transaction).

    Raises
    ------
    ValidationFailed
        When a field is empty, too long, has NUL characters, or ``details``
        is not JSON (NaN and infinity included).
    """
    role_s = str(role)
    for name, value in (
        ("actor", actor),
        ("role", role_s),
        ("action", action),
        ("resource", resource),
        ("record_id", record_id),
        ("outcome", outcome),
        ("purpose", purpose),
    ):
        _check_text(name, value)
    try:
        clean_details: dict[str, Any] = _canon_value(
            json.loads(json.dumps(_canon_value(details or {}), allow_nan=False))
        )
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"audit details are not JSON: {exc}") from exc
    if not isinstance(clean_details, dict):
        raise ValidationFailed("audit details must be a JSON object")
    if "\x00" in json.dumps(clean_details):
        raise ValidationFailed("audit details must not contain NUL characters")
    if at is not None and at.tzinfo is None:
        raise ValidationFailed("audit time must be timezone-aware")
    when = (at if at is not None else datetime.now(UTC)).astimezone(UTC)

    _lock_chain(session)
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq = 1 if last is None else int(last.seq) + 1
    prev_hash = GENESIS_HASH if last is None else str(last.hash)
    entry = AuditEntry(
        seq=seq,
        at=when,
        actor=actor,
        role=role_s,
        action=action,
        resource=resource,
        record_id=record_id,
        outcome=outcome,
        purpose=purpose,
        details=clean_details,
        prev_hash=prev_hash,
    )
    # one definition of what is hashed, shared with the verifier
    entry.hash = entry_hash(secret, entry)
    session.add(entry)
    session.flush()
    return entry


def audit_event(entry: AuditEntry) -> AuditEvent:
    """The bus event mirroring ``entry`` (for live oversight)."""
    return AuditEvent(
        source="audit",
        occurred_at=entry.at,
        actor=entry.actor,
        action=entry.action,
        resource=entry.resource,
        record_id=entry.record_id,
        outcome=entry.outcome,
        purpose=entry.purpose,
    )


# --- verify --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    record_id: str | None
    outcome: str
    purpose: str | None
    details: Any  # as stored: verify must see an edit that changed its type too
    prev_hash: str
    hash: str


_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.role,
    AuditEntry.action,
    AuditEntry.resource,
    AuditEntry.record_id,
    AuditEntry.outcome,
    AuditEntry.purpose,
    AuditEntry.details,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


def _stream(
    session: Session,
    *,
    batch_size: int,
    upto: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[_Link]:
    """Entries in ``seq`` order, fetched ``batch_size`` at a time (keyset paging)."""
    after: int | None = None
    while True:
        stmt = select(*_COLUMNS).order_by(AuditEntry.seq).limit(batch_size)
        if after is not None:
            stmt = stmt.where(AuditEntry.seq > after)
        if upto is not None:
            stmt = stmt.where(AuditEntry.seq <= upto)
        if since is not None:
            stmt = stmt.where(AuditEntry.at >= since)
        if until is not None:
            stmt = stmt.where(AuditEntry.at < until)
        rows = session.execute(stmt).all()
        for r in rows:
            yield _Link(
                seq=int(r.seq),
                at=r.at,
                actor=r.actor,
                role=r.role,
                action=r.action,
                resource=r.resource,
                record_id=r.record_id,
                outcome=r.outcome,
                purpose=r.purpose,
                details=r.details,
                prev_hash=r.prev_hash,
                hash=r.hash,
            )
        if len(rows) < batch_size:
            return
        after = int(rows[-1].seq)


@dataclass(frozen=True)
class ChainProblem:
    """One break in the chain: where, what kind, and an explanation."""

    seq: int
    kind: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    """The result of :func:`verify_chain`.

    ``kind`` of the first problem is one of:

    * ``edited`` — an entry's contents no longer match its hash although it
      links correctly to its predecessor;
    * ``deleted`` — entries are missing (a gap in ``seq``, or ``prev_hash``
      naming an entry that is not in the log);
    * ``inserted`` — an entry that does not link to its predecessor (its
      ``prev_hash`` names another entry), or one sitting between two entries
      that link to each other, or a repeated ``seq``.

    The kind is the most likely explanation of what the verifier sees; the
    seq is exact. ``problems`` lists up to :data:`MAX_PROBLEMS` breaks.
    """

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    kind: str | None = None
    message: str = ""
    problems: list[ChainProblem] = field(default_factory=list)


def verify_chain(session: Session, secret: bytes, *, batch_size: int = 1000) -> VerifyReport:
    """Recompute every hash and check every link, ``batch_size`` entries at a time.

    Verifies the entries present when it starts (later appends are left for
    the next run).
    """
    top = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    if top is None:
        return VerifyReport(
            ok=True, checked=0, head_seq=0, head_hash=GENESIS_HASH, message="the log is empty"
        )
    upto = int(top.seq)
    problems: list[ChainProblem] = []

    def report(seq: int, kind: str, message: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(ChainProblem(seq, kind, message))

    def hash_exists(h: str) -> bool:
        return session.scalar(select(AuditEntry.seq).where(AuditEntry.hash == h).limit(1)) is not None

    prev_seq = 0
    prev_hash = GENESIS_HASH
    prev_flagged = False
    checked = 0
    stream = _stream(session, batch_size=batch_size, upto=upto)
    cur = next(stream, None)
    while cur is not None:
        nxt = next(stream, None)
        checked += 1
        hmac_ok = hmac.compare_digest(entry_hash(secret, cur), cur.hash)
        link_ok = hmac.compare_digest(cur.prev_hash, prev_hash)
        bad = False
        if cur.seq <= prev_seq:
            report(cur.seq, "inserted", f"entry {cur.seq} repeats an earlier sequence number")
            cur = nxt
            continue
        if cur.seq > prev_seq + 1:
            first, last = prev_seq + 1, cur.seq - 1
            span = f"entry {first}" if first == last else f"entries {first}-{last}"
            report(first, "deleted", f"{span} missing (sequence jumps from {prev_seq} to {cur.seq})")
            bad = True
            if not hmac_ok:
                report(cur.seq, "edited", f"entry {cur.seq} does not match its hash")
        elif not link_ok:
            if prev_flagged and hmac_ok:
                # Explained by the problem just reported on the predecessor.
                pass
            elif hash_exists(cur.prev_hash):
                report(
                    cur.seq,
                    "inserted",
                    f"entry {cur.seq} links to another entry than entry {prev_seq}",
                )
                bad = True
            else:
                report(
                    cur.seq,
                    "deleted",
                    f"entry {cur.seq} links to an entry that is no longer in the log",
                )
                bad = True
            if not hmac_ok and not bad:
                report(cur.seq, "edited", f"entry {cur.seq} does not match its hash")
                bad = True
        elif not hmac_ok:
            if (
                nxt is not None
                and nxt.seq == cur.seq + 1
                and nxt.prev_hash == cur.prev_hash
                and nxt.prev_hash != cur.hash
            ):
                report(
                    cur.seq,
                    "inserted",
                    f"entry {cur.seq} was inserted: it does not match its hash and entry "
                    f"{nxt.seq} links past it to entry {prev_seq}",
                )
                # Skip it: the successor should link to the predecessor.
                prev_seq = cur.seq
                prev_flagged = True
                cur = nxt
                continue
            report(
                cur.seq,
                "edited",
                f"entry {cur.seq} does not match its hash: it was edited (or forged without the key)",
            )
            bad = True
        prev_seq, prev_hash, prev_flagged = cur.seq, cur.hash, bad
        cur = nxt

    first_problem = problems[0] if problems else None
    return VerifyReport(
        ok=first_problem is None,
        checked=checked,
        head_seq=upto,
        head_hash=str(top.hash),
        first_bad_seq=first_problem.seq if first_problem else None,
        kind=first_problem.kind if first_problem else None,
        message=(
            first_problem.message
            if first_problem
            else f"{checked} entries verified; head {upto} {str(top.hash)[:16]}…"
        ),
        problems=problems,
    )


# --- read and export -----------------------------------------------------------------


def _check_time(name: str, at: datetime | None) -> None:
    if at is not None and at.tzinfo is None:
        raise ValidationFailed(f"{name} must be timezone-aware")


_EXCEL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str, excel_safe: bool) -> str:
    if excel_safe and value.startswith(_EXCEL_TRIGGERS):
        return "'" + value
    return value


def export_csv(
    session: Session,
    fh: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = 1000,
    excel_safe: bool = False,
) -> int:
    """Write the entries with ``since <= at < until`` as CSV (header first); rows written.

    ``details`` is written as canonical JSON and ``at`` as hashed, so an export
    of the whole log can be re-verified offline with the secret. With
    ``excel_safe`` text cells starting with ``= + - @`` get a leading ``'``
    so spreadsheets do not run them as formulas (the export then no longer
    verifies byte for byte).
    """
    _check_time("since", since)
    _check_time("until", until)
    w = csv.writer(fh)
    w.writerow(CSV_COLUMNS)
    n = 0
    for e in _stream(session, batch_size=batch_size, since=since, until=until):
        details = json.dumps(
            _canon_value(e.details), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        w.writerow(
            [
                e.seq,
                format_at(e.at),
                _cell(e.actor, excel_safe),
                e.role,
                _cell(e.action, excel_safe),
                _cell(e.resource, excel_safe),
                _cell(e.record_id or "", excel_safe),
                _cell(e.outcome, excel_safe),
                _cell(e.purpose or "", excel_safe),
                details,
                e.prev_hash,
                e.hash,
            ]
        )
        n += 1
    return n


def _filtered(
    stmt: Select[Any],
    *,
    actor: str | None,
    action: str | None,
    resource: str | None,
    record_id: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    _check_time("since", since)
    _check_time("until", until)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if resource is not None:
        stmt = stmt.where(AuditEntry.resource == resource)
    if record_id is not None:
        stmt = stmt.where(AuditEntry.record_id == record_id)
    if outcome is not None:
        stmt = stmt.where(AuditEntry.outcome == outcome)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt


def iter_audit(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    record_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """One page of entries matching every given filter (``since <= at < until``, ``seq < before_seq``).

    ``before_seq`` is the stable way to page newest first: give the last ``seq`` of a page to get
    the next one. An offset shifts as entries are added (reading the log adds one).

    Raises
    ------
    ValidationFailed
        When ``limit`` is outside 1-1000, ``offset`` is negative, or a time is naive.
    """
    if not 1 <= limit <= 1000:
        raise ValidationFailed("limit must be between 1 and 1000")
    if offset < 0:
        raise ValidationFailed("offset must not be negative")
    stmt = _filtered(
        select(AuditEntry),
        actor=actor,
        action=action,
        resource=resource,
        record_id=record_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    order = AuditEntry.seq.desc() if newest_first else AuditEntry.seq.asc()
    return list(session.scalars(stmt.order_by(order).limit(limit).offset(offset)))


def count_audit(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    record_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """How many entries match the filters (the total behind :func:`iter_audit` pages)."""
    stmt = _filtered(
        select(func.count()).select_from(AuditEntry),
        actor=actor,
        action=action,
        resource=resource,
        record_id=record_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    return int(session.scalar(stmt) or 0)
