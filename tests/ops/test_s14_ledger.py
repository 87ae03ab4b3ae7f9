"""Audit findings in the case ledger and the monthly report (store level).

* a UUID ``ref_id`` was stored as typed (upper case, no hyphens, ``urn:uuid:``): retention deleted
  a plate read linked to an open case in upper case, and one outcome sent in four spellings made
  four rows; revision 0017 rewrites the older rows;
* a success outcome was accepted on a dismissed alert, a rejected hit, a dismissed incident;
* a concurrent duplicate (case number, link, outcome) was a 500; the case was read without a lock;
* a past month's "alerts by status" counted each alert's status now.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from rtcc.errors import Conflict
from rtcc.events import PlateRead, Position
from rtcc.ops.alerts import transition
from rtcc.ops.ledger import (
    OutcomeInput,
    add_link,
    canonical_ref_id,
    close_case,
    create_case,
    outcome_stats,
    record_outcomes,
)
from rtcc.ops.report import gather, month_range, status_at
from rtcc.oversight.retention import open_case_read_ids, purge_plate_reads
from rtcc.plates.reads import get_read, insert_reads
from rtcc.roles import Role
from rtcc.store import Store
from rtcc.store.migrate import current, head, upgrade
from rtcc.store.tables import GunshotIncidentRow
from rtcc.store.tables_hotlists import HitRow
from rtcc.store.tables_ops import AlertRow, Case, CaseLink, OutcomeRow
from tests.conftest import fresh_pg_database

NOW = datetime.now(UTC)
HERE = Position(lat=33.52, lon=-86.81)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    st = Store(url, pool_size=3)
    yield st
    st.close()


def _alert(
    kind: str = "gunshot", ref: str | None = None, status: str = "new", at: datetime = NOW
) -> AlertRow:
    return AlertRow(
        id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        occurred_at=at,
        source="acoustic",
        kind=kind,
        severity="critical",
        title="Gunfire",
        lat=33.5,
        lon=-86.8,
        ref_id=ref,
        status=status,
        history=[{"status": "new", "at": at.isoformat(), "by": "acoustic"}],
        created_at=at,
        updated_at=at,
    )


def _incident(status: str) -> GunshotIncidentRow:
    return GunshotIncidentRow(
        id=uuid.uuid4(),
        occurred_at=NOW,
        lat=33.5,
        lon=-86.8,
        ellipse_major_m=20,
        ellipse_minor_m=10,
        ellipse_angle_deg=0,
        rounds=2,
        intervals_s=[0.4],
        automatic=False,
        multiple_shooters=False,
        label="gunshot",
        confidence=0.9,
        sensors=["a", "b", "c"],
        pulses={},
        status=status,
    )


def _hit(status: str) -> HitRow:
    return HitRow(
        id=uuid.uuid4(),
        read_id=uuid.uuid4(),
        entry_id=uuid.uuid4(),
        read_at=NOW,
        device="lpr-1",
        lat=33.5,
        lon=-86.8,
        plate="ABC123",
        confidence=0.9,
        match="exact",
        distance=0,
        entry_plate="ABC123",
        entry_source="ncic",
        category="stolen_vehicle",
        reason="",
        status=status,
    )


def _record(store: Store, *items: OutcomeInput, lines: list[int] | None = None) -> list[str]:
    """Record ``items`` in one transaction; the ref ids stored."""

    def _do(s: Session) -> list[str]:
        return [r.ref_id for r in record_outcomes(s, list(items), "a", NOW, lines=lines)]

    return store.run(_do)


def _spellings(u: uuid.UUID) -> list[str]:
    return [str(u).upper(), u.hex, f"urn:uuid:{u}", u.hex.upper(), str(u)]


# -- canonical ref ids -----------------------------------------------------------------


def test_canonical_ref_id() -> None:
    u = uuid.uuid4()
    assert {canonical_ref_id(x) for x in _spellings(u)} == {str(u)}
    assert canonical_ref_id("cam-7/clip 12") == "cam-7/clip 12"  # an external footage ref stays as it is


def test_one_outcome_in_any_spelling_is_recorded_once(store: Store) -> None:
    hit = uuid.uuid4()
    alert = _alert("hotlist_hit", ref=str(hit))
    store.run(lambda s: s.add(alert))
    store.run(lambda s: create_case(s, "BPD-1", "Stolen car", "", "analyst1", NOW))
    for spelling in _spellings(hit):
        assert _record(store, OutcomeInput("BPD-1", "hit", spelling, "recovered_vehicle")) == [str(hit)]

    def _check(s: Session) -> None:
        assert [(o.ref_id, o.category) for o in s.scalars(select(OutcomeRow))] == [
            (str(hit), "recovered_vehicle")
        ]
        assert [(x.ref_type, x.ref_id) for x in s.scalars(select(CaseLink))] == [("hit", str(hit))]
        stats = outcome_stats(s)
        assert stats["per_category"]["recovered_vehicle"] == 1
        assert stats["alerts"] == 1 and stats["alerts_no_outcome"] == 0  # the hit's alert has its outcome

    store.run(_check)


def test_a_read_linked_in_upper_case_to_an_open_case_is_kept_by_retention(store: Store) -> None:
    old = NOW - timedelta(days=60)
    reads = [
        PlateRead(source="lpr-1", device="lpr-1", pos=HERE, plate=p, confidence=0.9, occurred_at=old)
        for p in ("ABC123", "XYZ789", "GONE11")
    ]
    store.run(lambda s: insert_reads(s, reads))
    case = store.run(lambda s: create_case(s, "BPD-7", "Robbery", "", "analyst1", NOW))

    def _link(s: Session) -> list[str]:
        c = s.get(Case, case.id)
        assert c is not None
        return [
            add_link(s, c, "plate_read", str(reads[0].event_id).upper(), "a", NOW).ref_id,
            add_link(s, c, "plate_read", f"urn:uuid:{reads[1].event_id}", "a", NOW).ref_id,
            add_link(s, c, "plate_read", reads[0].event_id.hex, "a", NOW).ref_id,  # the same link again
        ]

    assert store.run(_link) == [str(reads[0].event_id), str(reads[1].event_id), str(reads[0].event_id)]
    assert store.run(lambda s: len(list(s.scalars(select(CaseLink))))) == 2
    rep = store.run(lambda s: purge_plate_reads(s, days=30))
    assert rep.reads_deleted == 1 and rep.kept_for_cases == 2

    def _kept(s: Session) -> list[bool]:
        return [get_read(s, r.event_id) is not None for r in reads]

    assert store.run(_kept) == [True, True, False]


def test_retention_keeps_a_read_linked_in_upper_case_before_0017(store: Store) -> None:
    """A link row written by the old code (as typed) still keeps its read: the keys are canonical."""
    old = NOW - timedelta(days=60)
    read = PlateRead(
        source="lpr-1", device="lpr-1", pos=HERE, plate="ABC123", confidence=0.9, occurred_at=old
    )
    store.run(lambda s: insert_reads(s, [read]))
    case = store.run(lambda s: create_case(s, "BPD-8", "Robbery", "", "analyst1", NOW))
    store.run(
        lambda s: s.add(
            CaseLink(
                case_id=case.id,
                ref_type="plate_read",
                ref_id=str(read.event_id).upper(),
                linked_by="a",
                linked_at=NOW,
            )
        )
    )
    assert store.run(open_case_read_ids) == {str(read.event_id)}
    rep = store.run(lambda s: purge_plate_reads(s, days=30))
    assert rep.reads_deleted == 0
    assert store.run(lambda s: get_read(s, read.event_id) is not None)


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0017_canonicalises_and_merges(dialect: str, tmp_path: Path) -> None:
    if dialect == "sqlite":
        _migrate_and_check(f"sqlite:///{tmp_path / 'm.db'}")
    else:
        with fresh_pg_database() as url:
            _migrate_and_check(url)


def _migrate_and_check(url: str) -> None:
    upgrade(url, "0016")
    st = Store(url, pool_size=2)
    try:
        c1, c2 = uuid.uuid4(), uuid.uuid4()
        a, b = uuid.uuid4(), uuid.uuid4()
        t = [NOW + timedelta(seconds=i) for i in range(10)]

        def _seed(s: Session) -> None:
            for cid, n in ((c1, "C-1"), (c2, "C-2")):
                s.add(
                    Case(
                        id=cid,
                        number=n,
                        title="t",
                        description="",
                        status="open",
                        opened_by="a",
                        opened_at=NOW,
                    )
                )
            s.flush()
            links = [
                (c1, "alert", str(a).upper(), t[0]),  # earliest of three spellings: kept
                (c1, "alert", a.hex, t[1]),
                (c1, "alert", str(a), t[2]),
                (c2, "alert", f"urn:uuid:{a}", t[3]),  # another case: its own link
                (c1, "footage", "cam-7/clip-12", t[4]),  # not a UUID: unchanged
                (c1, "plate_read", str(b), t[5]),  # canonical already
            ]
            for cid, rt, rid, at in links:
                s.add(CaseLink(case_id=cid, ref_type=rt, ref_id=rid, linked_by="a", linked_at=at))
                s.flush()
            outcomes = [
                (c1, "alert", str(a), "arrest", "first", t[0]),  # canonical first, then other spellings
                (c1, "alert", str(a).upper(), "arrest", "second", t[1]),
                (c1, "alert", a.hex, "recovered_gun", "gun", t[2]),  # another category: kept
            ]
            for cid, rt, rid, cat, note, at in outcomes:
                s.add(
                    OutcomeRow(
                        case_id=cid,
                        ref_type=rt,
                        ref_id=rid,
                        category=cat,
                        note=note,
                        recorded_by="a",
                        recorded_at=at,
                    )
                )
                s.flush()

        st.run(_seed)
    finally:
        st.close()
    upgrade(url)
    assert current(url) == head() == "0017"
    st = Store(url, pool_size=2)
    try:

        def _check(s: Session) -> None:
            links = [
                (x.case_id, x.ref_type, x.ref_id, x.linked_at)
                for x in s.scalars(select(CaseLink).order_by(CaseLink.id))
            ]
            assert links == [
                (c1, "alert", str(a), t[0]),
                (c2, "alert", str(a), t[3]),
                (c1, "footage", "cam-7/clip-12", t[4]),
                (c1, "plate_read", str(b), t[5]),
            ]
            outs = [
                (o.ref_id, o.category, o.note) for o in s.scalars(select(OutcomeRow).order_by(OutcomeRow.id))
            ]
            assert outs == [(str(a), "arrest", "first"), (str(a), "recovered_gun", "gun")]

        st.run(_check)
    finally:
        st.close()


# -- success outcomes on what was found not real -------------------------------------------


def test_success_outcomes_are_refused_on_what_was_found_not_real(store: Store) -> None:
    rejected, confirmed, dismissed_inc = _hit("rejected"), _hit("confirmed"), _incident("dismissed")
    orphan_hit = uuid.uuid4()  # a hit known only through its (dismissed) alert
    alerts = {
        "dismissed": _alert(status="dismissed"),
        "of_rejected_hit": _alert("hotlist_hit", ref=str(rejected.id), status="acknowledged"),
        "of_dismissed_incident": _alert("gunshot", ref=str(dismissed_inc.id), status="closed"),
        "of_orphan_hit": _alert("hotlist_hit", ref=str(orphan_hit), status="dismissed"),
        "fine": _alert(status="closed"),
    }
    store.run(lambda s: s.add_all([rejected, confirmed, dismissed_inc, *alerts.values()]))
    store.run(lambda s: create_case(s, "BPD-9", "July 4th", "", "analyst1", NOW))
    refused = [
        ("alert", str(alerts["dismissed"].id)),
        ("alert", str(alerts["of_rejected_hit"].id)),
        ("alert", str(alerts["of_dismissed_incident"].id)),
        ("hit", str(rejected.id).upper()),
        ("hit", str(orphan_hit)),
        ("gunshot", str(dismissed_inc.id)),
    ]
    for ref_type, ref_id in refused:
        with pytest.raises(Conflict, match="only no_evidence_found may be recorded") as exc:
            _record(store, OutcomeInput("BPD-9", ref_type, ref_id, "recovered_gun"))
        assert exc.value.status == 409 and exc.value.code == "conflict"
        assert exc.value.details["errors"][0]["index"] == 0
    # all or none: one refused item in a batch records nothing
    with pytest.raises(Conflict):
        _record(
            store,
            OutcomeInput("BPD-9", "alert", str(alerts["fine"].id), "arrest"),
            OutcomeInput("BPD-9", "gunshot", str(dismissed_inc.id), "arrest"),
            lines=[2, 3],
        )
    assert store.run(lambda s: list(s.scalars(select(OutcomeRow)))) == []
    # no_evidence_found stays allowed on them; success on what was real is recorded
    for ref_type, ref_id in refused:
        _record(store, OutcomeInput("BPD-9", ref_type, ref_id, "no_evidence_found"))
    store.run(
        lambda s: record_outcomes(
            s,
            [
                OutcomeInput("BPD-9", "alert", str(alerts["fine"].id), "arrest"),
                OutcomeInput("BPD-9", "hit", str(confirmed.id), "recovered_vehicle"),
            ],
            "a",
            NOW,
        )
    )
    stats = store.run(outcome_stats)
    assert stats["success_cases"] == 1
    assert stats["per_category"]["recovered_gun"] == 0 and stats["per_category"]["no_evidence_found"] == 6


# -- concurrent duplicates and row locks -----------------------------------------------------


def test_a_concurrent_duplicate_is_a_conflict_not_an_integrity_error(store: Store) -> None:
    """The loser of a race passes the existence check and fails on the unique constraint: a 409."""
    case = store.run(lambda s: create_case(s, "BPD-2", "t", "", "a", NOW))
    alert = _alert()
    store.run(lambda s: s.add(alert))

    def _race_case(s: Session) -> None:
        with s.no_autoflush:  # the other request's row, not visible to the existence check yet
            s.add(
                Case(
                    id=uuid.uuid4(),
                    number="BPD-3",
                    title="t",
                    description="",
                    status="open",
                    opened_by="b",
                    opened_at=NOW,
                )
            )
            create_case(s, "BPD-3", "t", "", "a", NOW)

    with pytest.raises(Conflict, match="at the same time"):
        store.run(_race_case)

    store.run(lambda s: add_link(s, s.get(Case, case.id), "alert", str(alert.id), "a", NOW))  # type: ignore[arg-type]

    def _race_outcome(s: Session) -> None:
        with s.no_autoflush:
            s.add(
                OutcomeRow(
                    case_id=case.id,
                    ref_type="alert",
                    ref_id=str(alert.id),
                    category="arrest",
                    note="",
                    recorded_by="b",
                    recorded_at=NOW,
                )
            )
            record_outcomes(s, [OutcomeInput("BPD-2", "alert", str(alert.id), "arrest")], "a", NOW)

    with pytest.raises(Conflict, match="at the same time"):
        store.run(_race_outcome)
    assert store.run(lambda s: list(s.scalars(select(OutcomeRow)))) == []


def test_close_case_and_record_outcomes_lock_the_case(store: Store) -> None:
    case = store.run(lambda s: create_case(s, "BPD-4", "t", "", "a", NOW))
    alert = _alert()
    store.run(lambda s: s.add(alert))
    locked: list[bool] = []

    def _watch(state: Any) -> None:
        froms = {getattr(f, "name", None) for f in state.statement.get_final_froms()}
        if "cases" in froms:
            locked.append(state.statement._for_update_arg is not None)

    def _run(fn: Any) -> None:
        with store.session() as s:
            event.listen(s, "do_orm_execute", _watch)
            fn(s)

    _run(lambda s: record_outcomes(s, [OutcomeInput("BPD-4", "alert", str(alert.id), "arrest")], "a", NOW))
    assert locked and all(locked)
    locked.clear()
    _run(lambda s: close_case(s, case.id, "a", NOW, "charged"))
    assert locked == [True]


# -- the monthly report ------------------------------------------------------------------------


def test_status_at_the_end_of_a_period() -> None:
    end = datetime(2025, 11, 1, tzinfo=UTC)
    hist = [
        {"status": "new", "at": "2025-10-04T00:00:00+00:00", "by": "acoustic"},
        {"status": "acknowledged", "at": "2025-10-05T00:00:00+00:00", "by": "x"},
        {"status": "closed", "at": "2025-11-20T00:00:00+00:00", "by": "x"},
    ]
    assert status_at(hist, end) == "acknowledged"
    assert status_at(hist, datetime(2025, 12, 1, tzinfo=UTC)) == "closed"
    assert status_at([], end) == "new" and status_at(None, end) == "new"
    assert status_at(hist[2:], end) == "new"  # nothing before the end: new


def test_a_past_months_status_row_does_not_change_after_the_month(store: Store) -> None:
    oct0, oct_end = month_range("2025-10")
    at = oct0 + timedelta(days=3)
    closed_in_oct, closed_in_nov = _alert(at=at), _alert(at=at + timedelta(hours=1))
    store.run(lambda s: s.add_all([closed_in_oct, closed_in_nov]))
    store.run(
        lambda s: transition(
            s, closed_in_oct.id, "close", role=Role.admin, by="x", at=oct0 + timedelta(days=10)
        )
    )
    before = store.run(lambda s: dict(gather(s, "2025-10", oct0, oct_end).alerts_by_status))
    assert before == {"new": 1, "closed": 1}
    store.run(
        lambda s: transition(
            s,
            closed_in_nov.id,
            "dismiss",
            role=Role.admin,
            by="x",
            at=datetime(2025, 11, 20, tzinfo=UTC),
            reason="fireworks",
        )
    )
    after = store.run(lambda s: dict(gather(s, "2025-10", oct0, oct_end).alerts_by_status))
    assert after == before
