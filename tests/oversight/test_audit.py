from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rtcc.errors import ValidationFailed
from rtcc.events import AuditEvent
from rtcc.oversight.audit import (
    CSV_COLUMNS,
    GENESIS_HASH,
    append_audit,
    audit_event,
    canonical_entry,
    compute_hash,
    count_audit,
    export_csv,
    iter_audit,
    verify_chain,
)
from rtcc.roles import Role
from rtcc.store.db import Store
from rtcc.store.tables import AuditEntry

from .conftest import SECRET

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def add(s: Session, i: int, **over: object) -> AuditEntry:
    fields: dict[str, object] = {
        "actor": f"user{i % 3}",
        "role": Role.analyst,
        "action": "plate_search" if i % 2 else "login",
        "resource": "plates" if i % 2 else "session",
        "record_id": f"r{i}",
        "outcome": "ok",
        "purpose": f"case 2025-{i:04d}",
        "details": {"i": i, "ratio": 1.5, "big": 1e16, "nested": {"z": [1, 2.0], "a": None}},
        "at": T0 + timedelta(seconds=i, microseconds=123),
    }
    fields.update(over)
    return append_audit(s, secret=SECRET, **fields)  # type: ignore[arg-type]


def fill(store: Store, n: int = 50) -> None:
    store.run(lambda s: [add(s, i) for i in range(1, n + 1)])


def entry(store: Store, seq: int) -> AuditEntry:
    e = store.run(lambda s: s.get(AuditEntry, seq))
    assert e is not None
    return e


def sql(store: Store, statement: str, **params: object) -> None:
    with store.session() as s:
        s.execute(text(statement), params)


def forge(store: Store, seq: int, prev_hash: str) -> None:
    """Insert a row the way someone without the secret would: plain SHA-256."""
    at = T0 + timedelta(hours=1)
    canon = canonical_entry(
        seq=seq,
        at=at,
        actor="mallory",
        role="admin",
        action="plate_search",
        resource="plates",
        record_id="ABC123",
        outcome="ok",
        purpose="routine",
        details={},
    )
    with store.session() as s:
        s.add(
            AuditEntry(
                seq=seq,
                at=at,
                actor="mallory",
                role="admin",
                action="plate_search",
                resource="plates",
                record_id="ABC123",
                outcome="ok",
                purpose="routine",
                details={},
                prev_hash=prev_hash,
                hash=hashlib.sha256(prev_hash.encode() + canon).hexdigest(),
            )
        )


# --- the chain -------------------------------------------------------------------------


def test_empty_log_verifies(store: Store) -> None:
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert report.ok and report.checked == 0 and report.head_seq == 0


def test_append_50_and_verify(store: Store) -> None:
    fill(store)
    first, e2, last = entry(store, 1), entry(store, 2), entry(store, 50)
    assert first.prev_hash == GENESIS_HASH
    assert e2.prev_hash == first.hash
    assert last.details["nested"] == {"z": [1, 2], "a": None}
    assert last.at == T0 + timedelta(seconds=50, microseconds=123)
    for batch in (1000, 7, 1):
        report = store.run(lambda s, b=batch: verify_chain(s, SECRET, batch_size=b))  # type: ignore[misc]
        assert report.ok, report.message
        assert report.checked == 50 and report.head_seq == 50 and report.head_hash == last.hash
        assert report.first_bad_seq is None and report.kind is None and not report.problems


def test_appends_across_transactions_chain(store: Store) -> None:
    for i in range(1, 6):
        e = store.run(lambda s, i=i: add(s, i))  # type: ignore[misc]
        assert e.seq == i
    e = store.run(lambda s: add(s, 6, at=None, details=None, purpose=None, record_id=None))
    assert e.at.tzinfo is not None and e.details == {}
    assert store.run(lambda s: verify_chain(s, SECRET)).ok


def test_wrong_secret_fails(store: Store) -> None:
    fill(store, 3)
    report = store.run(lambda s: verify_chain(s, b"another secret"))
    assert not report.ok and report.first_bad_seq == 1 and report.kind == "edited"


def test_update_is_reported_as_edited(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit_log SET purpose = 'nothing to see' WHERE seq = 17")
    report = store.run(lambda s: verify_chain(s, SECRET, batch_size=10))
    assert not report.ok
    assert report.first_bad_seq == 17 and report.kind == "edited"
    assert "17" in report.message
    assert len(report.problems) == 1
    assert report.checked == 50


@pytest.mark.parametrize("details", ['["plate ABC123 viewed for personal reasons"]', "[]", '"x"'])
def test_details_replaced_by_another_json_type_is_reported_as_edited(store: Store, details: str) -> None:
    """Audit finding (session 12): verify hashed any non-object ``details`` as ``{}``, so a list
    written over an entry's empty details passed, while the audit API served the list."""
    store.run(lambda s: [add(s, i, details={}) for i in range(1, 6)])
    assert store.run(lambda s: verify_chain(s, SECRET)).ok
    sql(store, f"UPDATE audit_log SET details = '{details}' WHERE seq = 3")
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert (report.ok, report.first_bad_seq, report.kind) == (False, 3, "edited")


def test_edit_with_rewritten_hash_is_reported_as_edited(store: Store) -> None:
    fill(store)
    e = entry(store, 20)
    canon = canonical_entry(
        seq=20,
        at=e.at,
        actor="someone-else",
        role=e.role,
        action=e.action,
        resource=e.resource,
        record_id=e.record_id,
        outcome=e.outcome,
        purpose=e.purpose,
        details=e.details,
    )
    fake = hashlib.sha256(e.prev_hash.encode() + canon).hexdigest()
    sql(store, "UPDATE audit_log SET actor = 'someone-else', hash = :h WHERE seq = 20", h=fake)
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert (report.ok, report.first_bad_seq, report.kind) == (False, 20, "edited")
    assert [p.seq for p in report.problems] == [20]


def test_delete_is_reported_as_deleted(store: Store) -> None:
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 25")
    report = store.run(lambda s: verify_chain(s, SECRET, batch_size=8))
    assert not report.ok
    assert report.first_bad_seq == 25 and report.kind == "deleted"
    assert "25" in report.message
    assert len(report.problems) == 1


def test_delete_of_several_and_of_the_first(store: Store) -> None:
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq IN (1, 30, 31, 32)")
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert [(p.seq, p.kind) for p in report.problems] == [(1, "deleted"), (30, "deleted")]
    assert "30-32" in report.problems[1].message


def test_delete_and_renumber_is_reported_as_deleted(store: Store) -> None:
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 40")
    sql(store, "UPDATE audit_log SET seq = -(seq - 1) WHERE seq > 40")
    sql(store, "UPDATE audit_log SET seq = -seq WHERE seq < 0")
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert (report.first_bad_seq, report.kind) == (40, "deleted")


def test_forged_row_at_the_end_is_reported(store: Store) -> None:
    fill(store)
    forge(store, 51, entry(store, 50).hash)
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert not report.ok
    assert report.first_bad_seq == 51
    assert report.kind == "edited"  # no successor: edited and forged look the same
    assert "forged" in report.message


def test_forged_row_in_the_middle_is_reported_as_inserted(store: Store) -> None:
    fill(store)
    # Make room at 26 by renumbering the later rows, then slip a forged row in.
    sql(store, "UPDATE audit_log SET seq = -(seq + 1) WHERE seq > 25")
    sql(store, "UPDATE audit_log SET seq = -seq WHERE seq < 0")
    forge(store, 26, entry(store, 25).hash)
    report = store.run(lambda s: verify_chain(s, SECRET, batch_size=5))
    assert not report.ok
    assert (report.first_bad_seq, report.kind) == (26, "inserted")
    assert report.checked == 51


def test_relinked_row_is_reported_as_inserted(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit_log SET prev_hash = :h WHERE seq = 30", h=entry(store, 10).hash)
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert (report.first_bad_seq, report.kind) == (30, "inserted")


def test_prev_hash_to_nowhere_is_reported_as_deleted(store: Store) -> None:
    fill(store)
    sql(store, "UPDATE audit_log SET prev_hash = :h WHERE seq = 30", h="f" * 64)
    report = store.run(lambda s: verify_chain(s, SECRET))
    assert (report.first_bad_seq, report.kind) == (30, "deleted")


def test_concurrent_appends_keep_one_chain(store: Store) -> None:
    writers, each = 4, 25

    def one(w: int, i: int) -> None:
        def go(s: Session) -> None:
            append_audit(
                s,
                secret=SECRET,
                actor=f"writer{w}",
                role=Role.officer,
                action="bodycam_start",
                resource="devices",
                record_id=f"{w}-{i}",
                outcome="ok",
            )

        store.run(go)

    if store.is_postgres:
        # Separate sessions on separate connections, all at once.
        barrier = threading.Barrier(writers)

        def worker(w: int) -> None:
            barrier.wait()
            for i in range(each):
                one(w, i)

        with ThreadPoolExecutor(writers) as pool:
            for f in [pool.submit(worker, w) for w in range(writers)]:
                f.result()
    else:
        # SQLite: every write goes through the store's single writer thread.
        async def main() -> None:
            async def worker(w: int) -> None:
                for i in range(each):
                    await store.write(lambda s, i=i: one_in(s, w, i))  # type: ignore[misc]

            await asyncio.gather(*(worker(w) for w in range(writers)))

        def one_in(s: Session, w: int, i: int) -> AuditEntry:
            return append_audit(
                s,
                secret=SECRET,
                actor=f"writer{w}",
                role=Role.officer,
                action="bodycam_start",
                resource="devices",
                record_id=f"{w}-{i}",
                outcome="ok",
            )

        asyncio.run(main())

    report = store.run(lambda s: verify_chain(s, SECRET))
    assert report.ok, report.message
    assert report.checked == writers * each == report.head_seq
    seqs = store.run(lambda s: list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq))))
    assert seqs == list(range(1, writers * each + 1))
    ids = store.run(lambda s: set(s.scalars(select(AuditEntry.record_id))))
    assert len(ids) == writers * each


# --- validation -------------------------------------------------------------------------


def test_append_validation(store: Store) -> None:
    def bad(**over: object) -> None:
        store.run(lambda s: add(s, 1, **over))

    with pytest.raises(ValidationFailed, match="actor"):
        bad(actor="")
    with pytest.raises(ValidationFailed, match="action"):
        bad(action="x" * 65)
    with pytest.raises(ValidationFailed, match="NaN"):
        bad(details={"x": float("nan")})
    with pytest.raises(ValidationFailed, match="timezone"):
        bad(at=datetime(2025, 1, 1))
    with pytest.raises(ValidationFailed, match="NUL"):
        bad(purpose="a\x00b")
    assert store.run(lambda s: count_audit(s)) == 0
    # Odd but valid details are stored as JSON.
    e = store.run(lambda s: add(s, 1, details={"when": T0, "n": 2.0}))
    assert e.details == {"when": str(T0), "n": 2}
    assert store.run(lambda s: verify_chain(s, SECRET)).ok


def test_audit_event_mirror(store: Store) -> None:
    e = store.run(lambda s: add(s, 1))
    ev = audit_event(e)
    assert isinstance(ev, AuditEvent)
    assert (ev.actor, ev.action, ev.record_id, ev.purpose) == (
        "user1",
        "plate_search",
        "r1",
        "case 2025-0001",
    )


# --- export and listing ------------------------------------------------------------------


def test_export_csv_round_trip(store: Store) -> None:
    fill(store)
    buf = io.StringIO()
    n = store.run(lambda s: export_csv(s, buf, batch_size=7))
    assert n == 50
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == 50
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [int(r["seq"]) for r in rows] == list(range(1, 51))
    # The export carries everything needed to re-verify offline with the secret.
    prev = GENESIS_HASH
    for r in rows:
        canon = canonical_entry(
            seq=int(r["seq"]),
            at=datetime.fromisoformat(r["at"]),
            actor=r["actor"],
            role=r["role"],
            action=r["action"],
            resource=r["resource"],
            record_id=r["record_id"] or None,
            outcome=r["outcome"],
            purpose=r["purpose"] or None,
            details=json.loads(r["details"]),
        )
        assert r["prev_hash"] == prev
        assert compute_hash(SECRET, prev, canon) == r["hash"]
        prev = r["hash"]

    part = io.StringIO()
    since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)
    assert store.run(lambda s: export_csv(s, part, since=since, until=until)) == 10
    assert len(list(csv.DictReader(io.StringIO(part.getvalue())))) == 10


def test_export_csv_excel_safe(store: Store) -> None:
    store.run(lambda s: add(s, 1, purpose='=HYPERLINK("http://x")'))
    plain, safe = io.StringIO(), io.StringIO()
    store.run(lambda s: export_csv(s, plain))
    store.run(lambda s: export_csv(s, safe, excel_safe=True))
    assert next(csv.DictReader(io.StringIO(plain.getvalue())))["purpose"].startswith("=")
    assert next(csv.DictReader(io.StringIO(safe.getvalue())))["purpose"].startswith("'=")


def test_iter_audit_filters(store: Store) -> None:
    fill(store, 30)
    page = store.run(lambda s: iter_audit(s, limit=5))
    assert [e.seq for e in page] == [30, 29, 28, 27, 26]
    page2 = store.run(lambda s: iter_audit(s, limit=5, offset=5, newest_first=False))
    assert [e.seq for e in page2] == [6, 7, 8, 9, 10]
    by_actor = store.run(lambda s: iter_audit(s, actor="user0", limit=100))
    assert {e.seq % 3 for e in by_actor} == {0} and len(by_actor) == 10
    searches = store.run(lambda s: iter_audit(s, action="plate_search", resource="plates"))
    assert len(searches) == 15 and all(e.seq % 2 for e in searches)
    window = store.run(
        lambda s: iter_audit(s, since=T0 + timedelta(seconds=5), until=T0 + timedelta(seconds=8))
    )
    assert [e.seq for e in window] == [7, 6, 5]
    assert store.run(lambda s: count_audit(s, actor="user1", action="plate_search")) == 5
    assert store.run(lambda s: count_audit(s, record_id="r3", outcome="ok")) == 1
    assert store.run(lambda s: count_audit(s)) == 30
    with pytest.raises(ValidationFailed):
        store.run(lambda s: iter_audit(s, limit=0))
    with pytest.raises(ValidationFailed):
        store.run(lambda s: iter_audit(s, offset=-1))
    with pytest.raises(ValidationFailed):
        store.run(lambda s: iter_audit(s, since=datetime(2025, 1, 1)))
