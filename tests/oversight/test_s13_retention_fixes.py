"""Session 13 (retention audit): evidence tied to an open case through an alert, crash-safe media.

* A confirmed hotlist hit whose *alert* carries an outcome recorded in an open
  case (``record_outcomes`` links the alert, not the hit) keeps its read and
  photos like a hit linked directly; once the case closes they follow the
  ordinary rule.
* A run that dies after its purge committed but before the media files were
  deleted leaves them listed in ``media_deletions``: the next run deletes
  them (sparing a file a newer read stored again), and the purge was audited
  in its own transaction, so it is never committed unaudited.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import rtcc.oversight.retention as retention
from rtcc.cli.main import app
from rtcc.events import PlateRead, Position
from rtcc.ops import ledger
from rtcc.oversight.retention import media_root, run_once
from rtcc.plates.media import MediaStore
from rtcc.plates.reads import insert_reads, mark_hit
from rtcc.settings import Settings
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry
from rtcc.store.tables_hotlists import HitRow, MediaDeletionRow
from rtcc.store.tables_ops import AlertRow, Case
from rtcc.store.tables_plates import PlateReadRow
from tests.conftest import StartCenter

NOW = datetime.now(UTC)
HERE = Position(lat=33.52, lon=-86.81)
SECRET = "s13-retention-secret-" + "x" * 30


@dataclass
class Center:
    """A migrated SQLite store and the settings ``run_once`` and the CLI use for it."""

    settings: Settings
    store: Store
    media: MediaStore


@pytest.fixture
def center(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Center]:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("RTCC_DATA_DIR", str(data))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", SECRET)
    monkeypatch.setenv("RTCC_SIM__ENABLED", "false")
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    settings = Settings(data_dir=data, security={"secret_key": SECRET}, sim={"enabled": False})
    upgrade(settings.database_url)
    store = Store(settings.database_url)
    yield Center(settings, store, MediaStore(media_root(settings)))
    store.close()


def old_read(media: MediaStore, plate: str, days_ago: float = 500) -> PlateRead:
    """A read ``days_ago`` old with its own vehicle image and plate crop on disk."""
    return PlateRead(
        source="lpr-1",
        device="lpr-1",
        occurred_at=NOW - timedelta(days=days_ago),
        pos=HERE,
        plate=plate,
        confidence=0.9,
        image_ref=media.put(f"vehicle {plate}".encode() * 50, "jpg"),
        crop_ref=media.put(f"crop {plate}".encode() * 20, "jpg"),
    )


def confirmed_hit(r: PlateRead, decided_days_ago: float) -> HitRow:
    return HitRow(
        id=uuid.uuid4(),
        read_id=r.event_id,
        entry_id=uuid.uuid4(),
        read_at=r.occurred_at,
        device=r.device,
        lat=HERE.lat,
        lon=HERE.lon,
        plate=r.plate,
        confidence=0.9,
        image_ref=r.image_ref,
        crop_ref=r.crop_ref,
        match="exact",
        distance=0,
        entry_plate=r.plate,
        entry_source="ncic",
        category="stolen_vehicle",
        reason="",
        status="confirmed",
        decided_by="sup1",
        decided_at=NOW - timedelta(days=decided_days_ago),
        decision_reason="visual check",
    )


def files_of(r: PlateRead) -> list[str]:
    assert r.image_ref is not None and r.crop_ref is not None
    return [r.image_ref, r.crop_ref]


def read_exists(store: Store, r: PlateRead) -> bool:
    n = store.run(
        lambda s: s.scalar(
            select(func.count()).select_from(PlateReadRow).where(PlateReadRow.id == r.event_id)
        )
    )
    return bool(n)


def purges(store: Store) -> list[dict[str, Any]]:
    """The details of every ``retention_purge`` audit entry, oldest first."""
    rows = store.run(
        lambda s: [
            dict(e.details)
            for e in s.scalars(
                select(AuditEntry).where(AuditEntry.action == "retention_purge").order_by(AuditEntry.seq)
            )
        ]
    )
    return list(rows)


def queued(store: Store) -> int:
    return int(store.run(lambda s: s.scalar(select(func.count()).select_from(MediaDeletionRow))) or 0)


# --- 1. a hit linked to an open case through its alert ---------------------------------------


def seed_hit_in_case_through_alert(c: Center, *, alert_kind: str = "hotlist_hit") -> tuple[PlateRead, Any]:
    """A read 500 days old, its hit confirmed 400 days ago, and an ``arrest`` outcome recorded on the
    hit's alert in an open case (so the case links the alert only). Returns the read and the case id."""
    r = old_read(c.media, "EVID1")
    hit = confirmed_hit(r, 400)
    alert_id = uuid.uuid4()
    case_id = uuid.uuid4()

    def fill(s: Session) -> None:
        insert_reads(s, [r])
        mark_hit(s, r.event_id)
        s.add(hit)
        s.add(
            AlertRow(
                id=alert_id,
                event_id=uuid.uuid4(),
                occurred_at=r.occurred_at,
                source="plates",
                kind=alert_kind,
                severity="critical",
                title="Hotlist hit EVID1 (stolen vehicle) at lpr-1 — verify before action",
                ref_id=str(hit.id),
                status="closed",
                history=[],
            )
        )
        s.add(Case(id=case_id, number="2026-00013", title="Stolen car ring", status="open", opened_by="a"))
        s.flush()
        ledger.record_outcomes(
            s, [ledger.OutcomeInput("2026-00013", "alert", str(alert_id), "arrest")], by="a", at=NOW
        )

    c.store.run(fill)
    links = c.store.run(lambda s: s.execute(select(ledger.CaseLink.ref_type)).scalars().all())
    assert links == ["alert"]  # the case links the alert, not the hit or the read
    return r, case_id


def test_hit_read_stays_while_its_alert_is_in_an_open_case(center: Center) -> None:
    r, case_id = seed_hit_in_case_through_alert(center)

    rep = run_once(center.store, center.settings)
    assert (rep.reads_deleted, rep.hit_reads_released, rep.kept_for_hits) == (0, 0, 1)
    assert read_exists(center.store, r)
    assert all(center.media.exists(ref) for ref in files_of(r))
    refs = center.store.run(lambda s: [(h.image_ref, h.crop_ref) for h in s.scalars(select(HitRow))])
    assert refs == [(r.image_ref, r.crop_ref)]  # the hit keeps its photos

    # the case closes: the read, its photos and the hit's refs follow the ordinary rule
    center.store.run(lambda s: ledger.close_case(s, case_id, "a", NOW, "solved"))
    rep = run_once(center.store, center.settings)
    assert (rep.reads_deleted, rep.hit_reads_released) == (1, 1)
    assert not read_exists(center.store, r)
    assert not any(center.media.exists(ref) for ref in files_of(r))
    refs = center.store.run(lambda s: [(h.image_ref, h.crop_ref) for h in s.scalars(select(HitRow))])
    assert refs == [(None, None)]


def test_an_alert_of_another_kind_does_not_keep_a_hit_read(center: Center) -> None:
    """Only hit alerts name a hit in ``ref_id``: a gunshot alert in an open case keeps no read."""
    r, _ = seed_hit_in_case_through_alert(center, alert_kind="gunshot")
    rep = run_once(center.store, center.settings)
    assert (rep.reads_deleted, rep.hit_reads_released) == (1, 1)
    assert not read_exists(center.store, r)


# --- 2. a crash between the commit and the file deletion ----------------------------------------


class Killed(Exception):
    """Stands for the process dying (kill -9) right after the purge committed."""


def crash_in_file_phase(*_: Any, **__: Any) -> int:
    raise Killed


def test_crash_after_commit_orphans_no_files_and_the_purge_is_audited(
    center: Center, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone, reused = old_read(center.media, "GONE1"), old_read(center.media, "REUSE1")
    center.store.run(lambda s: insert_reads(s, [gone, reused]))

    with monkeypatch.context() as m:
        m.setattr(retention, "delete_media", crash_in_file_phase)
        with pytest.raises(Killed):
            run_once(center.store, center.settings, via="cli")
    # the rows went and the run was audited with its counts; the files are still there, listed
    assert not read_exists(center.store, gone) and not read_exists(center.store, reused)
    [first] = purges(center.store)
    assert (first["reads_deleted"], first["media_deleted"], first["via"]) == (2, 4, "cli")
    assert all(center.media.exists(ref) for ref in files_of(gone) + files_of(reused))
    assert queued(center.store) == 4

    # meanwhile a new read stores the same vehicle image again (same bytes: same ref)
    again = PlateRead(
        source="lpr-1",
        device="lpr-1",
        occurred_at=NOW - timedelta(hours=1),
        pos=HERE,
        plate="REUSE1",
        confidence=0.9,
        image_ref=center.media.put(b"vehicle REUSE1" * 50, "jpg"),
    )
    assert again.image_ref == reused.image_ref
    center.store.run(lambda s: insert_reads(s, [again]))

    # the next run (the CLI) finishes the interrupted deletion, audited, and spares the reused file
    r = CliRunner().invoke(app, ["retention", "run"])
    assert r.exit_code == 0, r.output
    assert "deleted 3 media files an interrupted earlier run left" in r.stdout
    assert not any(center.media.exists(ref) for ref in files_of(gone))
    assert reused.crop_ref is not None and not center.media.exists(reused.crop_ref)
    assert center.media.exists(again.image_ref)
    assert queued(center.store) == 0
    second = purges(center.store)[-1]
    assert (second["media_resumed"], second["reads_deleted"], second["via"]) == (3, 0, "cli")
    # nothing on disk that no row names
    on_disk = {p.name for p in media_root(center.settings).rglob("*") if p.is_file()}
    assert on_disk == {again.image_ref}


@pytest.mark.parametrize("backend", ["embedded"])
async def test_processor_run_is_audited_before_the_files_and_resumes_after_a_crash(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await start_center(processors=("retention",))
    store = c.center.store
    assert store is not None
    media = MediaStore(media_root(c.settings))
    r = old_read(media, "PROC1", days_ago=40)
    store.run(lambda s: insert_reads(s, [r]))
    svc = c.center.services["retention"]
    with monkeypatch.context() as m:
        m.setattr(retention, "delete_media", crash_in_file_phase)
        with pytest.raises(Killed):
            await svc.run()
    assert [d["reads_deleted"] for d in purges(store)] == [1]
    assert all(media.exists(ref) for ref in files_of(r))

    rep = await svc.run()
    assert (rep.media_resumed, rep.reads_deleted) == (2, 0)
    assert not any(media.exists(ref) for ref in files_of(r))
    assert queued(store) == 0
    assert [d["media_resumed"] for d in purges(store)] == [0, 2]
