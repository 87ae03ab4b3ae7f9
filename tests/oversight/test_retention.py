"""Retention purges old reads that hit nothing (and their media), keeps hit and open-case reads, audits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.events import PlateRead, Position
from rtcc.oversight.retention import media_root
from rtcc.plates.media import MediaStore
from rtcc.plates.reads import insert_reads, mark_hit
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables_hotlists import RetentionRunRow
from rtcc.store.tables_ops import Case, CaseLink
from rtcc.store.tables_plates import PlateReadRow
from tests.conftest import StartCenter, fresh_pg_database
from tests.helpers import eventually

NOW = datetime.now(UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated-by-the-center PostgreSQL database (the folder's ``pg_url`` holds bare tables)."""
    with fresh_pg_database() as url:
        yield url


HERE = Position(lat=33.52, lon=-86.81)


def _read(plate: str, days_ago: float, media: MediaStore, *, shared: str | None = None) -> PlateRead:
    crop = media.put(f"crop of {plate}".encode(), "jpg")
    image = shared or media.put(f"vehicle {plate}".encode(), "jpg")
    return PlateRead(
        source="lpr-1",
        device="lpr-1",
        occurred_at=NOW - timedelta(days=days_ago),
        pos=HERE,
        plate=plate,
        confidence=0.9,
        crop_ref=crop,
        image_ref=image,
    )


def _populate(store: Store, media: MediaStore) -> dict[str, PlateRead]:
    shared = media.put(b"one frame, two plates", "jpg")
    reads = {
        "old": _read("OLD1", 40, media),
        "old_shared": _read("OLD2", 40, media, shared=shared),
        "new_shared": _read("NEW2", 1, media, shared=shared),
        "old_hit": _read("HIT1", 40, media),
        "old_open_case": _read("CASE1", 40, media),
        "old_closed_case": _read("CASE2", 40, media),
        "new": _read("NEW1", 1, media),
    }

    def fill(s: Session) -> None:
        insert_reads(s, list(reads.values()))
        mark_hit(s, reads["old_hit"].event_id)
        for status, key in (("open", "old_open_case"), ("closed", "old_closed_case")):
            case = Case(
                id=uuid.uuid4(), number=f"2026-{status}", title="t", status=status, opened_by="analyst1"
            )
            s.add(case)
            s.flush()
            s.add(
                CaseLink(
                    case_id=case.id, ref_type="plate_read", ref_id=str(reads[key].event_id), linked_by="a"
                )
            )

    store.run(fill)
    return reads


def _plates(store: Store) -> set[str]:
    return set(store.run(lambda s: s.scalars(select(PlateReadRow.plate))))


def _check_purged(store: Store, media: MediaStore, reads: dict[str, PlateRead]) -> None:
    assert _plates(store) == {"NEW1", "NEW2", "HIT1", "CASE1"}
    for key in ("old", "old_closed_case"):
        r = reads[key]
        assert r.crop_ref and r.image_ref
        assert not media.exists(r.crop_ref) and not media.exists(r.image_ref)
    gone = reads["old_shared"]
    assert gone.crop_ref and not media.exists(gone.crop_ref)
    assert gone.image_ref and media.exists(gone.image_ref)  # still used by a newer read
    for key in ("old_hit", "old_open_case", "new"):
        r = reads[key]
        assert r.crop_ref and media.exists(r.crop_ref) and r.image_ref and media.exists(r.image_ref)


async def test_retention_run_purges_keeps_and_audits(start_center: StartCenter) -> None:
    c = await start_center(processors=("retention",))
    store = c.center.store
    assert store is not None
    media = MediaStore(media_root(c.settings))
    reads = _populate(store, media)
    admin = await c.login("admin")
    try:
        svc = c.center.services["retention"]
        dry = await svc.run(dry_run=True)
        assert (dry.reads_deleted, dry.kept_for_hits, dry.kept_for_cases) == (3, 1, 1)
        assert dry.media_deleted == 5  # 2 crops + 2 images of the plain and closed-case reads, 1 crop
        assert len(_plates(store)) == 7  # nothing deleted

        rep = await svc.run()
        assert (rep.reads_deleted, rep.media_deleted, rep.kept_for_hits, rep.kept_for_cases) == (3, 5, 1, 1)
        _check_purged(store, media, reads)
        again = await svc.run()
        assert again.reads_deleted == 0 and again.media_deleted == 0

        audit = (await admin.get("/api/v1/audit", params={"action": "retention_purge"})).json()["items"]
        assert [e["actor"] for e in audit] == [
            "system:retention",
            "system:retention",
        ]  # dry runs are not purges
        first = audit[-1]["details"]
        assert (first["reads_deleted"], first["media_deleted"], first["plate_reads_days"]) == (3, 5, 30)
        runs = store.run(lambda s: [(r.dry_run, r.reads_deleted) for r in s.scalars(select(RetentionRunRow))])
        assert sorted(runs) == [(False, 0), (False, 3), (True, 3)]
    finally:
        await admin.aclose()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_retention_runs_on_its_schedule(start_center: StartCenter) -> None:
    c = await start_center(processors=("retention",), retention={"interval_s": 1, "plate_reads_days": 10})
    store = c.center.store
    assert store is not None

    async def ran() -> list[Any] | None:
        rows = await store.read(lambda s: list(s.scalars(select(RetentionRunRow))))
        return rows or None

    [first, *_] = await eventually(ran, what="a scheduled retention run")
    assert first.plate_reads_days == 10 and not first.dry_run


def test_cli_retention_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", "cli-test-secret-" + "r" * 30)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    store = Store(url)
    media = MediaStore(tmp_path / "media")
    try:
        reads = _populate(store, media)
        runner = CliRunner()
        r = runner.invoke(app, ["retention", "run", "--dry-run"])
        assert r.exit_code == 0, r.output
        assert (
            "would delete 3 plate reads" in r.stdout
            and "kept 1 with a hit and 1 linked to an open case" in r.stdout
        )
        assert len(_plates(store)) == 7
        r = runner.invoke(app, ["retention", "run"])
        assert r.exit_code == 0, r.output
        assert "deleted 3 plate reads older than 30 days" in r.stdout and "5 media files" in r.stdout
        _check_purged(store, media, reads)
        from rtcc.store.tables import AuditEntry

        audit = store.run(
            lambda s: [(a.actor, a.action, a.details["reads_deleted"]) for a in s.scalars(select(AuditEntry))]
        )
        assert audit == [("system:retention", "retention_purge", 3)]
    finally:
        store.close()
