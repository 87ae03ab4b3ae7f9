"""Retention also purges the event log: plate read and hit copies go, pulse audio is stripped.

Session 9 (auditor's findings 1b and 3): ``events`` rows of ``plate_read`` and
``hotlist_hit`` older than ``retention.plate_reads_days`` are deleted; the
audio of pulses older than ``retention.pulse_audio_days`` is stripped (timing
and level kept) unless the pulse belongs to a gunshot incident.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.events import Event, HotlistHit, PlateRead, Position, Pulse
from rtcc.store import Store
from rtcc.store.events_repo import record_events
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry, EventRecord, GunshotIncidentRow
from tests.conftest import StartCenter, fresh_pg_database

NOW = datetime.now(UTC)
HERE = Position(lat=33.52, lon=-86.81)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database the center migrates itself."""
    with fresh_pg_database() as url:
        yield url


def flac_b64(seed: int) -> str:
    """A short FLAC clip (noise), base64 as a sensor sends it."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal(1600)).astype(np.float32), 16_000, format="FLAC")
    return base64.b64encode(buf.getvalue()).decode()


def pulse(sensor: str, days_ago: float, *, audio: bool = True) -> Pulse:
    return Pulse(
        source=sensor,
        device=sensor,
        occurred_at=NOW - timedelta(days=days_ago),
        pos=HERE,
        peak_db=101.5,
        snr_db=32.0,
        duration_ms=12.0,
        sample_rate_hz=16_000 if audio else None,
        audio_flac_b64=flac_b64(int(days_ago * 10)) if audio else None,
    )


def plate_read(plate: str, days_ago: float) -> PlateRead:
    return PlateRead(
        source="lpr-1",
        device="lpr-1",
        occurred_at=NOW - timedelta(days=days_ago),
        pos=HERE,
        plate=plate,
        confidence=0.9,
    )


def hotlist_hit(plate: str, days_ago: float) -> HotlistHit:
    return HotlistHit(
        source="hotlist",
        device="lpr-1",
        occurred_at=NOW - timedelta(days=days_ago),
        read_id=uuid.uuid4(),
        pos=HERE,
        plate=plate,
        entry_plate=plate,
        category="stolen_vehicle",
        match="exact",
    )


def populate(store: Store) -> dict[str, Event]:
    """Old and new reads, hits and pulses; one old pulse belongs to a gunshot incident."""
    evs: dict[str, Event] = {
        "old_read": plate_read("OLD1", 40),
        "new_read": plate_read("NEW1", 1),
        "old_hit": hotlist_hit("HIT1", 40),
        "new_hit": hotlist_hit("HIT2", 1),
        "old_pulse": pulse("ac-1", 40),
        "old_incident_pulse": pulse("ac-2", 40),
        "old_silent_pulse": pulse("ac-3", 40, audio=False),
        "new_pulse": pulse("ac-1", 5),
    }
    incident_pulse = evs["old_incident_pulse"]

    def fill(s: Session) -> None:
        record_events(s, evs.values())
        s.add(
            GunshotIncidentRow(
                id=INCIDENT,
                occurred_at=incident_pulse.occurred_at,
                lat=HERE.lat,
                lon=HERE.lon,
                ellipse_major_m=20.0,
                ellipse_minor_m=10.0,
                ellipse_angle_deg=0.0,
                rounds=1,
                label="gunshot",
                confidence=0.95,
                sensors=["ac-2"],
                pulses={"ac-2": str(incident_pulse.event_id)},
                status="confirmed",
            )
        )

    store.run(fill)
    return evs


INCIDENT = uuid.uuid4()


def stored(store: Store) -> dict[uuid.UUID, dict[str, Any]]:
    """Every stored event's payload by event id."""

    def q(s: Session) -> dict[uuid.UUID, dict[str, Any]]:
        return {r.event_id: dict(r.payload) for r in s.scalars(select(EventRecord))}

    out: dict[uuid.UUID, dict[str, Any]] = store.run(q)
    return out


def check_purged(store: Store, evs: dict[str, Event]) -> None:
    rows = stored(store)
    gone = {evs["old_read"].event_id, evs["old_hit"].event_id}
    assert gone.isdisjoint(rows), "old plate_read / hotlist_hit copies must be deleted"
    assert {e.event_id for e in evs.values()} - gone == set(rows)
    stripped = rows[evs["old_pulse"].event_id]
    assert stripped["audio_flac_b64"] is None
    # the pulse itself stays: timing, level, sensor, position (and it still parses)
    assert stripped == {**evs["old_pulse"].model_dump(mode="json"), "audio_flac_b64": None}
    assert Pulse.model_validate(stripped).peak_db == 101.5
    for key in ("old_incident_pulse", "new_pulse"):
        assert rows[evs[key].event_id]["audio_flac_b64"] == evs[key].model_dump()["audio_flac_b64"]


async def test_retention_purges_event_copies_and_pulse_audio(start_center: StartCenter) -> None:
    c = await start_center(processors=("retention",))
    store = c.center.store
    assert store is not None
    evs = populate(store)
    before = stored(store)
    admin = await c.login("admin")
    try:
        svc = c.center.services["retention"]
        dry = await svc.run(dry_run=True)
        assert (dry.plate_read_events_deleted, dry.hotlist_hit_events_deleted) == (1, 1)
        assert (dry.pulse_audio_stripped, dry.pulse_audio_kept_for_incidents) == (1, 1)
        assert stored(store) == before  # a dry run changes nothing

        rep = await svc.run()
        assert (rep.plate_read_events_deleted, rep.hotlist_hit_events_deleted) == (1, 1)
        assert (rep.pulse_audio_stripped, rep.pulse_audio_kept_for_incidents) == (1, 1)
        assert rep.pulse_audio_days == 30
        check_purged(store, evs)

        # the incident's evidence still plays
        r = await admin.get(f"/api/v1/gunshots/{INCIDENT}/audio", params={"sensor": "ac-2"})
        assert r.status_code == 200, r.text
        assert r.content[:4] == b"fLaC"

        again = await svc.run()
        assert (again.plate_read_events_deleted, again.hotlist_hit_events_deleted) == (0, 0)
        assert (again.pulse_audio_stripped, again.pulse_audio_kept_for_incidents) == (0, 1)

        audit = (await admin.get("/api/v1/audit", params={"action": "retention_purge"})).json()["items"]
        first = audit[-1]["details"]
        assert first["plate_read_events_deleted"] == 1 and first["hotlist_hit_events_deleted"] == 1
        assert first["pulse_audio_stripped"] == 1 and first["pulse_audio_days"] == 30

        page = (await c.http.get("/api/v1/transparency")).json()["plates"]["retention"]
        assert page["pulse_audio_days"] == 30
        assert (page["pulse_audio_stripped"], page["plate_read_events_deleted"]) == (1, 1)
    finally:
        await admin.aclose()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_pulse_audio_days_is_the_setting(start_center: StartCenter) -> None:
    c = await start_center(processors=("retention",), retention={"pulse_audio_days": 60})
    store = c.center.store
    assert store is not None
    evs = populate(store)
    rep = await c.center.services["retention"].run()
    assert rep.pulse_audio_stripped == 0 and rep.pulse_audio_days == 60
    assert stored(store)[evs["old_pulse"].event_id]["audio_flac_b64"] is not None
    assert rep.plate_read_events_deleted == 1  # plate_reads_days still 30


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_cli_retention_run_purges_events_too(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", "cli-test-secret-" + "r" * 30)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv("RTCC_DATABASE__URL", url)
    upgrade(url)
    store = Store(url)
    try:
        evs = populate(store)
        runner = CliRunner()
        r = runner.invoke(app, ["retention", "run", "--dry-run", "--json"])
        assert r.exit_code == 0, r.output
        dry = json.loads(r.stdout)
        assert (dry["plate_read_events_deleted"], dry["pulse_audio_stripped"], dry["dry_run"]) == (1, 1, True)
        assert stored(store)[evs["old_pulse"].event_id]["audio_flac_b64"] is not None
        r = runner.invoke(app, ["retention", "run", "--json"])
        assert r.exit_code == 0, r.output
        counts = json.loads(r.stdout)
        assert (counts["plate_read_events_deleted"], counts["hotlist_hit_events_deleted"]) == (1, 1)
        assert (counts["pulse_audio_stripped"], counts["pulse_audio_kept_for_incidents"]) == (1, 1)
        check_purged(store, evs)
        audit = store.run(
            lambda s: [(a.action, a.details["pulse_audio_stripped"]) for a in s.scalars(select(AuditEntry))]
        )
        assert audit == [("retention_purge", 1)]
    finally:
        store.close()
