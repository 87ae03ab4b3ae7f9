"""Hit reads are kept while their hit needs them, and released to ordinary retention afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.events import PlateRead, Position
from rtcc.oversight.retention import purge_plate_reads
from rtcc.plates.reads import insert_reads, mark_hit
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables_hotlists import HitRow
from rtcc.store.tables_ops import Case, CaseLink
from rtcc.store.tables_plates import PlateReadRow
from tests.conftest import fresh_pg_database

NOW = datetime.now(UTC)
HERE = Position(lat=33.52, lon=-86.81)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ret.db'}"
        upgrade(url)
        st = Store(url, pool_size=3)
        yield st
        st.close()
        return
    with fresh_pg_database() as url:
        upgrade(url)
        st = Store(url, pool_size=3)
        from rtcc.store.partitions import ensure_event_partitions

        st.run(lambda s: ensure_event_partitions(s, (NOW - timedelta(days=60)).date(), 62, "plate_reads"))
        yield st
        st.close()


def _hit(read: PlateRead, status: str, decided_days_ago: float | None) -> HitRow:
    return HitRow(
        id=uuid.uuid4(),
        read_id=read.event_id,
        entry_id=uuid.uuid4(),
        read_at=read.occurred_at,
        device=read.device,
        lat=HERE.lat,
        lon=HERE.lon,
        plate=read.plate,
        confidence=0.9,
        image_ref="i" * 64 + ".jpg",
        crop_ref="c" * 64 + ".jpg",
        match="lookalike",
        distance=0,
        entry_plate=read.plate,
        entry_source="ncic",
        category="stolen_vehicle",
        reason="",
        status=status,
        decided_by=None if decided_days_ago is None else "officer1",
        decided_at=None if decided_days_ago is None else NOW - timedelta(days=decided_days_ago),
        decision_reason=None if decided_days_ago is None else "checked",
    )


def test_hit_reads_are_released_when_no_hit_needs_them(store: Store) -> None:
    def read(plate: str, days_ago: float = 40) -> PlateRead:
        return PlateRead(
            source="lpr-1",
            device="lpr-1",
            occurred_at=NOW - timedelta(days=days_ago),
            pos=HERE,
            plate=plate,
            confidence=0.9,
        )

    cases = {
        # plate: (hit status, days since the decision, case status linked to the hit or None)
        "UNDECIDED": ("verify", None, None),
        "MISREAD": ("rejected", 39.0, None),
        "CONFRECENT": ("confirmed", 39.0, None),
        "CONFOLD": ("confirmed", 400.0, None),
        "OPENCASE": ("confirmed", 400.0, "open"),
        "CLOSEDCASE": ("confirmed", 39.0, "closed"),
    }
    reads = {p: read(p) for p in cases}
    reads["MISREADNEW"] = read("MISREADNEW", days_ago=1)
    hits: dict[str, HitRow] = {}

    def fill(s: Session) -> None:
        insert_reads(s, list(reads.values()))
        for plate, r in reads.items():
            status, decided, case_status = cases.get(plate, ("rejected", 0.5, None))
            mark_hit(s, r.event_id)
            hits[plate] = h = _hit(r, status, decided)
            s.add(h)
            if case_status is not None:
                case = Case(id=uuid.uuid4(), number=plate, title="t", status=case_status, opened_by="a")
                s.add(case)
                s.flush()
                s.add(CaseLink(case_id=case.id, ref_type="hit", ref_id=str(h.id), linked_by="a"))

    store.run(fill)

    dry = store.run(lambda s: purge_plate_reads(s, days=30, dry_run=True, confirmed_hit_days=365))
    assert (dry.hit_reads_released, dry.reads_deleted) == (3, 3)
    assert len(store.run(lambda s: list(s.scalars(select(PlateReadRow.plate))))) == 7  # a dry run keeps all

    rep = store.run(lambda s: purge_plate_reads(s, days=30, confirmed_hit_days=365))
    assert (rep.hit_reads_released, rep.reads_deleted, rep.kept_for_hits) == (3, 3, 3)
    left = set(store.run(lambda s: list(s.scalars(select(PlateReadRow.plate)))))
    # released: the misread, the confirmed hit a year old with no case, the closed case's hit
    assert left == {"UNDECIDED", "CONFRECENT", "OPENCASE", "MISREADNEW"}
    # the decision records stay; the released ones lost their photos with the read
    rows = {h.plate: h for h in store.run(lambda s: list(s.scalars(select(HitRow))))}
    assert set(rows) == set(reads)
    for plate in ("MISREAD", "CONFOLD", "CLOSEDCASE"):
        assert rows[plate].image_ref is None and rows[plate].crop_ref is None
        assert rows[plate].decided_by == "officer1"
    for plate in ("UNDECIDED", "CONFRECENT", "OPENCASE", "MISREADNEW"):
        assert rows[plate].image_ref is not None

    again = store.run(lambda s: purge_plate_reads(s, days=30, confirmed_hit_days=365))
    assert (again.hit_reads_released, again.reads_deleted) == (0, 0)
