"""Oversight audit (session 12): personal data that reached people without a role check or an entry.

* the live WebSocket streamed every pulse with its street audio (``/events`` blanks it; audio is
  played per listen, audited, through its incident);
* ``GET /events`` served reviewer-only alerts (``gunshot_review``) to officers (the live feed did not);
* a resident's street address (their home) went to every operations role, unaudited;
* ``GET /hotlists/entries`` (wanted and missing people's plates, with why) was read unaudited;
* a purpose with a NUL was recorded as a search and then failed its audit entry; case numbers
  ``0`` or ``²`` and a zero-width-spaced purpose passed; an over-long purpose was refused by query
  validation before the refusal could be audited.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets

from rtcc.events import Position, Pulse
from rtcc.roles import DeviceType, Role
from rtcc.store.tables_cameras import CameraRow
from tests.acoustic.test_pipeline_helpers import bang_flac
from tests.conftest import Running
from tests.helpers import eventually
from tests.ops.helpers import audit_of, make_alert, publish

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

HERE = (33.5186, -86.8104)


async def test_live_pulses_carry_no_street_audio(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    key = await center.center.provision_device("ac-s12", DeviceType.acoustic_sensor, "Mic", *HERE)
    analyst = clients[Role.analyst]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=pulse"
    headers = {"authorization": analyst.headers["authorization"]}
    async with websockets.connect(url, additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["types"] == ["pulse"]
        pulse = Pulse(
            source="ac-s12",
            device="ac-s12",
            occurred_at=datetime.now(UTC),
            pos=Position(lat=HERE[0], lon=HERE[1]),
            peak_db=90.0,
            snr_db=30.0,
            duration_ms=40.0,
            sample_rate_hz=12_000,
            audio_flac_b64=bang_flac(),
        )
        r = await center.http.post(
            "/api/v1/ingest/events",
            json={"events": [pulse.model_dump(mode="json")]},
            headers={"authorization": f"Device {key}"},
        )
        assert r.status_code == 202, r.text
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("kind") == "event" and msg["event"].get("event_id") == str(pulse.event_id):
                break
    assert msg["event"]["device"] == "ac-s12" and msg["event"]["snr_db"] == 30.0
    assert msg["event"]["audio_flac_b64"] is None


async def test_event_history_keeps_reviewer_alerts_from_officers(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    review = make_alert("gunshot_review", title="Possible gunfire: review")
    gunfire = make_alert("gunshot")
    for ev in (review, gunfire):
        await publish(center, ev)

    async def ids(client: httpx.AsyncClient) -> set[str] | None:
        r = await client.get("/api/v1/events", params={"types": "alert"})
        assert r.status_code == 200, r.text
        found = {str(e["alert_id"]) for e in r.json()["items"]}
        return found if str(gunfire.alert_id) in found else None

    analyst = await eventually(lambda: ids(clients[Role.analyst]), what="both alerts stored")
    assert str(review.alert_id) in analyst
    officer = await eventually(lambda: ids(clients[Role.officer]), what="the gunfire alert")
    assert str(review.alert_id) not in officer


async def test_a_residents_address_is_contact_data(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    store = center.center.store
    assert store is not None
    ids = {owner: uuid.uuid4() for owner in ("resident", "business")}

    def _add(s: Any) -> None:
        for owner, cid in ids.items():
            s.add(
                CameraRow(
                    id=cid,
                    kind="community",
                    name=f"{owner} camera",
                    owner_type=owner,
                    owner_name="Pat Doe",
                    contact_email=f"{owner}@example.org",
                    address=f"12 {owner.title()} St",
                    lat=HERE[0],
                    lon=HERE[1],
                    bearing_deg=0.0,
                    fov_deg=90.0,
                    range_m=30.0,
                    level="registered",
                    status="active",
                    verify_attempts=0,
                )
            )

    store.run(_add)
    officer, supervisor = clients[Role.officer], clients[Role.supervisor]
    r = await officer.get("/api/v1/cameras", params={"kind": "community"})
    assert r.status_code == 200, r.text
    by = {c["id"]: c for c in r.json()["items"]}
    assert by[str(ids["resident"])]["address"] is None  # a home: not for every role
    assert by[str(ids["resident"])]["lat"] == pytest.approx(HERE[0])  # the map still has it
    assert by[str(ids["business"])]["address"] == "12 Business St"
    r = await officer.get(f"/api/v1/cameras/{ids['resident']}")
    assert r.status_code == 200 and r.json()["address"] is None
    r = await supervisor.get(f"/api/v1/cameras/{ids['resident']}", params={"include_contact": "true"})
    assert r.status_code == 200 and r.json()["address"] == "12 Resident St"
    entries = await audit_of(clients[Role.admin], "read_camera_contact")
    assert [e["actor"] for e in entries] == ["supervisor1"]


async def test_reading_hotlist_entries_is_audited(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    supervisor, officer = clients[Role.supervisor], clients[Role.officer]
    r = await officer.get("/api/v1/hotlists/entries")
    assert r.status_code == 200 and r.json()["items"] == []
    assert await audit_of(clients[Role.admin], "read_hotlist_entries") == []  # nothing read
    body = {"plate": "ABC1234", "category": "stolen_vehicle", "reason": "taken from 1st Ave"}
    r = await supervisor.post("/api/v1/hotlists/entries", json=body)
    assert r.status_code == 201, r.text
    r = await officer.get("/api/v1/hotlists/entries", params={"plate": "ABC"})
    assert r.status_code == 200 and [e["plate"] for e in r.json()["items"]] == ["ABC1234"]
    (entry,) = await audit_of(clients[Role.admin], "read_hotlist_entries")
    assert entry["actor"] == "officer1" and entry["details"]["count"] == 1
    assert entry["details"]["plate"] == "ABC"


@pytest.mark.parametrize(
    ("purpose", "case_number", "says"),
    [
        ("stolen\x00vehicle report", "2026-1", "control or invisible"),
        ("s\u200bt\u200bo\u200bl", "2026-1", "control or invisible"),
        ("stolen vehicle report", "0", "names no case"),
        ("stolen vehicle report", "000", "names no case"),
        ("stolen vehicle report", "\u00b2", "names no case"),
        ("stolen vehicle report", "n/a 0", "names no case"),
        ("stolen vehicle report " * 60, "2026-1", "at most 1000"),
        ("stolen vehicle report", "2026-" + "1" * 70, "at most 64"),
    ],
)
async def test_searches_refuse_hidden_characters_and_caseless_numbers_and_audit_it(
    center: Running, clients: dict[Role, httpx.AsyncClient], purpose: str, case_number: str, says: str
) -> None:
    analyst, admin = clients[Role.analyst], clients[Role.admin]
    for path in ("/api/v1/plates/search", "/api/v1/plates/track", "/api/v1/plates/cotravel"):
        params = {"plate": "ABC1234", "purpose": purpose, "case_number": case_number}
        r = await analyst.get(path, params=params)
        assert r.status_code == 422, (path, r.text)
        assert says in r.json()["error"]["message"], r.text
    refused = [e for e in await audit_of(admin, "plate_search_refused") if e["actor"] == "analyst1"]
    assert len(refused) == 3
    assert await audit_of(admin, "plate_search") == []
    r = await admin.get("/api/v1/plates/transparency")
    if r.status_code == 200:  # the public page's ledger counts no search that was refused
        assert "ABC1234" not in r.text
    store = center.center.store
    assert store is not None
    from sqlalchemy import func, select

    from rtcc.store.tables_hotlists import PlateSearchRow

    assert store.run(lambda s: s.scalar(select(func.count()).select_from(PlateSearchRow))) == 0


async def test_an_unreachable_database_is_a_503_not_a_500(
    center: Running, clients: dict[Role, httpx.AsyncClient], tmp_path: Any
) -> None:
    """Production audit: with PostgreSQL down every request answered 500 ``internal_error`` and
    logged two tracebacks. A database that cannot be reached is the server's temporary state: 503."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    store = center.center.store
    assert store is not None
    working = store.sessions
    gone = create_engine(f"sqlite:///{tmp_path}/no/such/dir/rtcc.db")  # cannot be opened: OperationalError
    store.sessions = sessionmaker(gone, expire_on_commit=False)
    try:
        r = await clients[Role.supervisor].get("/api/v1/alerts")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert "database" in r.json()["error"]["message"]
    finally:
        store.sessions = working
        gone.dispose()
    r = await clients[Role.supervisor].get("/api/v1/alerts")
    assert r.status_code == 200, r.text
