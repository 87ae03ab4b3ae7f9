"""Retention also purges the copies of purged reads, plate alert events and device heartbeats.

Session 12 (accountability findings): a purged plate read's entries go from
the incident packets (``packets.body``) that listed it, the rest of the packet
staying as it was; ``alert`` events of a plate alert kind go after
``retention.plate_reads_days`` like the other event copies (gunshot alerts
stay); ``device_heartbeat`` events (officers' positions) go after
``retention.heartbeat_days``. A dry run counts all of it and deletes nothing.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.events import Alert, AlertSeverity, DeviceHeartbeat, Event, PlateRead, Position
from rtcc.ops.packets import PacketParams, jsonable, served_plate_reads, upsert_packet
from rtcc.oversight.retention import purge_plate_reads
from rtcc.plates.reads import insert_reads, mark_hit
from rtcc.roles import DeviceType
from rtcc.settings import RetentionSettings
from rtcc.store import Store
from rtcc.store.events_repo import record_events
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry, EventRecord
from rtcc.store.tables_hotlists import HitRow
from rtcc.store.tables_ops import AlertRow, Case, CaseLink, PacketRow
from rtcc.store.tables_plates import PlateReadRow
from tests.conftest import StartCenter, fresh_pg_database

NOW = datetime.now(UTC)
HERE = Position(lat=33.52, lon=-86.81)
SHOT_AT = NOW - timedelta(days=40)
"""When the old gunshot incident happened (its packet lists the reads around it)."""
SIXTY_DAYS_AGO = (NOW - timedelta(days=60)).date()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database the center migrates itself."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store (on PostgreSQL: partitioned ``events`` and ``plate_reads``)."""
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

        for parent in ("events", "plate_reads"):
            st.run(lambda s, p=parent: ensure_event_partitions(s, SIXTY_DAYS_AGO, 62, p))
        yield st
        st.close()


def read(plate: str, at: datetime) -> PlateRead:
    return PlateRead(source="lpr-1", device="lpr-1", occurred_at=at, pos=HERE, plate=plate, confidence=0.9)


def hit_row(r: PlateRead, status: str) -> HitRow:
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
        image_ref=None,
        crop_ref=None,
        match="lookalike",
        distance=0,
        entry_plate=r.plate,
        entry_source="ncic",
        category="stolen_vehicle",
        reason="",
        status=status,
        decided_by="officer1",
        decided_at=r.occurred_at + timedelta(hours=1),
        decision_reason="checked",
    )


def alert(kind: str, title: str, days_ago: float) -> Alert:
    return Alert(
        source="hotlist" if kind == "hotlist_hit" else "acoustic",
        occurred_at=NOW - timedelta(days=days_ago),
        kind=kind,
        severity=AlertSeverity.critical,
        title=title,
        pos=HERE,
    )


def heartbeat(device: str, kind: DeviceType, days_ago: float) -> DeviceHeartbeat:
    return DeviceHeartbeat(
        source=device,
        device=device,
        device_type=kind,
        occurred_at=NOW - timedelta(days=days_ago),
        pos=HERE,
        recording=True,
    )


@dataclass
class World:
    """What :func:`populate` stored."""

    reads: dict[str, PlateRead]
    events: dict[str, Event]
    gunshot_ref: str = ""
    legacy_ref: str = ""
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)


def populate(store: Store) -> World:
    """Old reads around an old gunshot, their packets, plate and gunshot alert events, heartbeats.

    * ``misread`` hit a hotlist, rejected: released, then purged;
    * ``case_hit`` hit a hotlist, rejected, but linked to an open case: kept;
    * ``plain`` hit nothing: purged; ``plain_case`` hit nothing, linked to an open case: kept.

    The gunshot's packet is built by the operations code (it lists the hit reads, counts the
    rest); the ``legacy`` hit packet is one built before the section only counted the other
    reads (it lists ``plain`` and ``plain_case`` and has no count).
    """
    reads = {
        "misread": read("MIS1", SHOT_AT - timedelta(minutes=2)),
        "case_hit": read("CASEH1", SHOT_AT - timedelta(minutes=1)),
        "plain": read("PLAIN1", SHOT_AT + timedelta(minutes=1)),
        "plain_case": read("CASEP1", SHOT_AT + timedelta(minutes=2)),
    }
    events: dict[str, Event] = {
        "old_plate_alert": alert("hotlist_hit", "Hotlist hit MIS1 (stolen_vehicle)", 40),
        "new_plate_alert": alert("hotlist_hit", "Hotlist hit NEW1 (stolen_vehicle)", 1),
        "old_gunshot_alert": alert("gunshot", "Gunshot, 2 rounds", 40),
        "old_bodycam_beat": heartbeat("bwc-7", DeviceType.bodycam, 40),
        "old_plate_cam_beat": heartbeat("lpr-1", DeviceType.plate_camera, 31),
        "new_bodycam_beat": heartbeat("bwc-7", DeviceType.bodycam, 20),
        "fresh_bodycam_beat": heartbeat("bwc-7", DeviceType.bodycam, 1),
    }
    world = World(reads, events)

    def fill(s: Session) -> None:
        insert_reads(s, list(reads.values()))
        record_events(s, events.values())
        plate_alert = events["old_plate_alert"]
        assert isinstance(plate_alert, Alert)
        s.add(
            AlertRow(
                id=plate_alert.alert_id,
                event_id=plate_alert.event_id,
                occurred_at=plate_alert.occurred_at,
                source=plate_alert.source,
                kind=plate_alert.kind,
                severity=plate_alert.severity.value,
                title=plate_alert.title,
                status="closed",
                history=[],
            )
        )
        case = Case(id=uuid.uuid4(), number="2026-0012", title="t", status="open", opened_by="analyst1")
        s.add(case)
        s.flush()
        for key in ("misread", "case_hit"):
            mark_hit(s, reads[key].event_id)
            s.add(hit_row(reads[key], "rejected"))
        for key in ("case_hit", "plain_case"):
            s.add(
                CaseLink(
                    case_id=case.id, ref_type="plate_read", ref_id=str(reads[key].event_id), linked_by="a"
                )
            )
        s.flush()
        gunshot = str(uuid.uuid4())
        params = PacketParams()
        upsert_packet(s, "gunshot", gunshot, HERE.lat, HERE.lon, SHOT_AT, params, now=SHOT_AT)
        rows = {r.id: r for r in s.scalars(select(PlateReadRow))}
        legacy = str(uuid.uuid4())
        listed = [jsonable(rows[reads[k].event_id]) for k in ("plain", "plain_case")]
        body = {
            "kind": "hit",
            "ref_id": legacy,
            "at": SHOT_AT.isoformat(),
            "pos": {"lat": HERE.lat, "lon": HERE.lon},
            "params": {"radius_m": 300.0, "window_min": 10.0, "history_days": 90},
            "cameras": {"items": [], "note": None},
            "plate_reads": {"items": listed, "note": None},
            "bodycams": {"items": [], "note": None},
            "earlier_incidents": {"items": [], "note": None},
            "version": 1,
            "built_at": SHOT_AT.isoformat(),
        }
        s.add(
            PacketRow(
                kind="hit",
                ref_id=legacy,
                occurred_at=SHOT_AT,
                lat=HERE.lat,
                lon=HERE.lon,
                body=body,
                version=1,
            )
        )
        world.gunshot_ref, world.legacy_ref = gunshot, legacy

    store.run(fill)
    world.bodies = packet_bodies(store)
    return world


def packet_bodies(store: Store) -> dict[str, dict[str, Any]]:
    """Every stored packet body by ``ref_id``."""
    out: dict[str, dict[str, Any]] = store.run(
        lambda s: {r.ref_id: copy.deepcopy(dict(r.body)) for r in s.scalars(select(PacketRow))}
    )
    return out


def copies(counts: Any) -> tuple[int, int, int]:
    """(packet read entries removed, plate alert events deleted, heartbeats deleted) of a report or its
    JSON counts."""
    d = counts if isinstance(counts, dict) else counts.counts()
    keys = ("packet_reads_removed", "plate_alert_events_deleted", "heartbeat_events_deleted")
    return (d[keys[0]], d[keys[1]], d[keys[2]])


def listed_plates(body: dict[str, Any]) -> list[str]:
    return [x["plate"] for x in body["plate_reads"]["items"]]


def stored_event_ids(store: Store) -> set[uuid.UUID]:
    return set(store.run(lambda s: list(s.scalars(select(EventRecord.event_id)))))


def check_purged(world: World, store: Store) -> None:
    """The expired copies are gone, everything else is as it was."""
    bodies = packet_bodies(store)
    before = world.bodies
    shot, legacy = bodies[world.gunshot_ref], bodies[world.legacy_ref]
    # the purged misread left the gunshot's packet; the read kept for the open case stays
    assert listed_plates(before[world.gunshot_ref]) == ["CASEH1", "MIS1"]
    assert listed_plates(shot) == ["CASEH1"]
    assert shot["plate_reads"]["items"] == before[world.gunshot_ref]["plate_reads"]["items"][:1]
    assert shot["plate_reads"]["others"] == before[world.gunshot_ref]["plate_reads"]["others"] == 2
    assert {k: v for k, v in shot.items() if k != "plate_reads"} == {
        k: v for k, v in before[world.gunshot_ref].items() if k != "plate_reads"
    }
    # the legacy packet: the plain read goes, the open case's stays, the count served is unchanged
    assert listed_plates(legacy) == ["CASEP1"]
    assert {k: v for k, v in legacy.items() if k != "plate_reads"} == {
        k: v for k, v in before[world.legacy_ref].items() if k != "plate_reads"
    }
    served_before = served_plate_reads(before[world.legacy_ref])["plate_reads"]
    served = served_plate_reads(legacy)["plate_reads"]
    assert served_before["items"] == served["items"] == []  # neither read hit: never served
    assert served_before["others"] == served["others"] == 2
    # no copy of a purged read anywhere in a packet
    text = json.dumps(bodies)
    for key in ("misread", "plain"):
        assert str(world.reads[key].event_id) not in text
        assert world.reads[key].plate not in text

    left = stored_event_ids(store)
    gone = {world.events[k].event_id for k in ("old_plate_alert", "old_bodycam_beat", "old_plate_cam_beat")}
    assert gone.isdisjoint(left)
    assert {e.event_id for e in world.events.values()} - gone == left
    # the alert queue's record of the plate alert stays
    assert store.run(lambda s: [r.title for r in s.scalars(select(AlertRow))]) == [
        "Hotlist hit MIS1 (stolen_vehicle)"
    ]


def test_purged_reads_leave_packets_and_old_plate_alerts_and_heartbeats_go(store: Store) -> None:
    world = populate(store)
    events_before = stored_event_ids(store)

    dry = store.run(lambda s: purge_plate_reads(s, days=30, dry_run=True, heartbeat_days=30))
    assert dry.reads_deleted == 2 and dry.hit_reads_released == 1
    assert (dry.packet_reads_removed, dry.packets_updated) == (2, 2)
    assert dry.plate_alert_events_deleted == 1
    assert (dry.heartbeat_events_deleted, dry.heartbeat_days) == (2, 30)
    # a dry run counts and changes nothing
    assert packet_bodies(store) == world.bodies
    assert stored_event_ids(store) == events_before

    rep = store.run(lambda s: purge_plate_reads(s, days=30, heartbeat_days=30))
    assert rep.reads_deleted == 2
    assert (rep.packet_reads_removed, rep.packets_updated) == (2, 2)
    assert rep.plate_alert_events_deleted == 1
    assert rep.heartbeat_events_deleted == 2
    assert rep.heartbeat_cutoff == rep.started_at - timedelta(days=30)
    assert rep.counts()["heartbeat_cutoff"] == rep.heartbeat_cutoff.isoformat()
    check_purged(world, store)

    again = store.run(lambda s: purge_plate_reads(s, days=30, heartbeat_days=30))
    assert copies(again) == (0, 0, 0)


def test_heartbeats_follow_heartbeat_days(store: Store) -> None:
    world = populate(store)
    rep = store.run(lambda s: purge_plate_reads(s, days=30, heartbeat_days=10))
    assert rep.heartbeat_events_deleted == 3
    left = stored_event_ids(store)
    assert world.events["new_bodycam_beat"].event_id not in left
    assert world.events["fresh_bodycam_beat"].event_id in left
    assert world.events["old_gunshot_alert"].event_id in left


def test_packet_copies_of_reads_purged_earlier_go_too(store: Store) -> None:
    """Packets still holding reads deleted before this fix are cleaned by the next run."""
    world = populate(store)
    gone = world.reads["plain"].event_id
    store.run(lambda s: s.query(PlateReadRow).filter(PlateReadRow.id == gone).delete())
    rep = store.run(lambda s: purge_plate_reads(s, days=30))
    assert rep.packet_reads_removed == 2  # the misread purged now, the plain read purged before
    assert listed_plates(packet_bodies(store)[world.legacy_ref]) == ["CASEP1"]
    assert rep.heartbeat_days is None and rep.heartbeat_events_deleted == 0  # not asked for


def test_heartbeat_days_setting() -> None:
    assert RetentionSettings().heartbeat_days == 30
    assert RetentionSettings(heartbeat_days=7).heartbeat_days == 7
    with pytest.raises(ValidationError):
        RetentionSettings(heartbeat_days=0)
    assert RetentionSettings.model_fields["heartbeat_days"].description


async def test_retention_run_purges_copies_audits_and_serves_the_packet(start_center: StartCenter) -> None:
    c = await start_center(processors=("retention",), retention={"heartbeat_days": 10})
    store = c.center.store
    assert store is not None
    if store.engine.dialect.name == "postgresql":
        from rtcc.store.partitions import ensure_event_partitions

        for parent in ("events", "plate_reads"):
            store.run(lambda s, p=parent: ensure_event_partitions(s, SIXTY_DAYS_AGO, 62, p))
    world = populate(store)
    admin = await c.login("admin")
    try:
        svc = c.center.services["retention"]
        dry = await svc.run(dry_run=True)
        assert copies(dry) == (2, 1, 3)
        assert packet_bodies(store) == world.bodies

        rep = await svc.run()
        assert copies(rep) == (2, 1, 3)
        assert rep.heartbeat_days == 10

        audit = (await admin.get("/api/v1/audit", params={"action": "retention_purge"})).json()["items"]
        details = audit[0]["details"]
        assert details["packet_reads_removed"] == 2 and details["packets_updated"] == 2
        assert details["plate_alert_events_deleted"] == 1
        assert details["heartbeat_events_deleted"] == 3 and details["heartbeat_days"] == 10

        r = await admin.get(f"/api/v1/packets/gunshot/{world.gunshot_ref}")
        assert r.status_code == 200, r.text
        section = r.json()["plate_reads"]
        assert [x["plate"] for x in section["items"]] == ["CASEH1"] and section["others"] == 2
        r = await admin.get(f"/api/v1/packets/hit/{world.legacy_ref}")
        assert r.status_code == 200, r.text
        assert r.json()["plate_reads"]["items"] == [] and r.json()["plate_reads"]["others"] == 2
    finally:
        await admin.aclose()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_cli_retention_run_purges_copies(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", "cli-test-secret-" + "r" * 30)
    monkeypatch.setenv("RTCC_RETENTION__HEARTBEAT_DAYS", "30")
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("RTCC_DATABASE__URL", url)
    upgrade(url)
    store = Store(url)
    try:
        world = populate(store)
        runner = CliRunner()
        r = runner.invoke(app, ["retention", "run", "--dry-run", "--json"])
        assert r.exit_code == 0, r.output
        dry = json.loads(r.stdout)
        assert copies(dry) == (2, 1, 2) and dry["dry_run"]
        assert packet_bodies(store) == world.bodies
        r = runner.invoke(app, ["retention", "run", "--json"])
        assert r.exit_code == 0, r.output
        counts = json.loads(r.stdout)
        assert (counts["packet_reads_removed"], counts["heartbeat_days"]) == (2, 30)
        check_purged(world, store)
        audit = store.run(
            lambda s: [
                (a.action, a.details["heartbeat_events_deleted"]) for a in s.scalars(select(AuditEntry))
            ]
        )
        assert audit == [("retention_purge", 2)]
    finally:
        store.close()
