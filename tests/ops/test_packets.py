"""Incident packets: built when an incident or hit arrives, rebuilt on nearby reads, read with an audit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rtcc.bodycam.registry import units_near
from rtcc.events import (
    DeviceHeartbeat,
    GunshotIncident,
    HotlistHit,
    PacketUpdated,
    PlateRead,
    Position,
    parse_event,
    subject_for,
)
from rtcc.geo import distance_m
from rtcc.ops.packets import bbox
from rtcc.ops.processor import OperationsProcessor
from rtcc.roles import DeviceType, Role
from rtcc.store.tables import GunshotIncidentRow
from tests.conftest import Running
from tests.helpers import eventually
from tests.ops.helpers import POINT, audit_of, publish

M_PER_DEG_LAT = 111_195.0


def _offset(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    import math

    lat, lon = POINT
    return lat + north_m / M_PER_DEG_LAT, lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat)))


def _incident_row(at: datetime, pos: tuple[float, float], status: str = "confirmed") -> GunshotIncidentRow:
    return GunshotIncidentRow(
        id=uuid.uuid4(),
        occurred_at=at,
        lat=pos[0],
        lon=pos[1],
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


def test_haversine_and_bbox_in_metres() -> None:
    # 1 km north along a meridian, and a box that holds a 300 m circle
    north = _offset(1000.0)
    assert distance_m(*POINT, *north) == pytest.approx(1000.0, rel=2e-3)
    east, beyond = _offset(0.0, 299.0), _offset(0.0, 305.0)
    lat0, lat1, lon0, lon1 = bbox(*POINT, 300.0)
    assert lat0 < POINT[0] < lat1 and lon0 < east[1] < lon1 < beyond[1]
    assert distance_m(*POINT, *east) == pytest.approx(299.0, rel=2e-3)


async def test_gunshot_packet_built_rebuilt_and_audited(
    start_center: Any, backend: str, request: pytest.FixtureRequest
) -> None:
    center: Running = await start_center(operations={"packet_debounce_s": 0.05, "packet_radius_m": 300.0})
    center.add_user("officer1", Role.officer)
    center.add_user("auditor1", Role.auditor)
    officer = await center.login("officer1")
    auditor = await center.login("auditor1")
    admin = await center.login("admin")
    now = datetime.now(UTC)
    store = center.center.store
    assert store is not None
    near = _incident_row(now - timedelta(days=2), _offset(120.0))
    far = _incident_row(now - timedelta(days=2), _offset(2000.0))
    old = _incident_row(now - timedelta(days=200), _offset(50.0))
    store.run(lambda s: s.add_all([near, far, old]))
    bc = _offset(-80.0)
    key = await center.center.provision_device(
        "bc-near", DeviceType.bodycam, "Body cam, unit 7", bc[0], bc[1]
    )
    # a unit counts as near by the position of its latest heartbeat (a registered one is not enough)
    beat = DeviceHeartbeat(
        source="bc-near",
        device="bc-near",
        device_type=DeviceType.bodycam,
        pos=Position(lat=bc[0], lon=bc[1]),
        recording=False,
    )
    r = await center.http.post(
        "/api/v1/ingest/events",
        json={"events": [beat.model_dump(mode="json")]},
        headers={"authorization": f"Device {key}"},
    )
    assert r.status_code == 202, r.text

    async def online() -> bool:
        return await store.read(lambda s: units_near(s, bc[0], bc[1], 10.0)) != []

    await eventually(online, what="bc-near online")
    bc_far = _offset(-3000.0)
    await center.center.provision_device(
        "bc-far", DeviceType.bodycam, "Body cam, unit 9", bc_far[0], bc_far[1]
    )

    updates: list[PacketUpdated] = []

    async def on_update(subject: str, payload: bytes) -> None:
        ev = parse_event(payload)
        assert isinstance(ev, PacketUpdated)
        updates.append(ev)

    bus = center.center.bus
    assert bus is not None
    sub = await bus.subscribe(subject_for("packet_updated"), on_update)
    try:
        inc = GunshotIncident(
            source="acoustic",
            pos=Position(lat=POINT[0], lon=POINT[1]),
            ellipse_major_m=25,
            ellipse_minor_m=12,
            rounds=3,
            label="gunshot",
            confidence=0.95,
            sensors=["a", "b", "c"],
        )
        await publish(center, inc)
        path = f"/api/v1/packets/gunshot/{inc.incident_id}"

        async def built() -> dict[str, Any] | None:
            r = await officer.get(path)
            return r.json() if r.status_code == 200 else None

        packet = await eventually(built, what="the incident packet")
        assert packet["version"] == 1 and packet["kind"] == "gunshot"
        assert packet["pos"] == {"lat": POINT[0], "lon": POINT[1]}
        earlier = packet["earlier_incidents"]["items"]
        assert [e["id"] for e in earlier] == [str(near.id)]  # not the far one, not the 200-day-old one
        assert earlier[0]["distance_m"] == pytest.approx(120.0, abs=2.0)
        for section in ("cameras", "plate_reads", "bodycams"):
            assert packet[section]["note"] is None, packet[section]["note"]  # every room's function answered
        units = packet["bodycams"]["items"]
        assert [u["device_id"] for u in units] == ["bc-near"] and units[0]["recording"] is False
        assert units[0]["distance_m"] == pytest.approx(80.0, abs=2.0)

        # a vehicle read nearby within the window rebuilds the packet (debounced)
        read = PlateRead(
            source="cam-1",
            device="cam-1",
            pos=Position(lat=_offset(100.0)[0], lon=POINT[1]),
            plate="ABC1234",
            confidence=0.9,
            occurred_at=inc.occurred_at + timedelta(minutes=3),
        )
        await publish(center, read)

        async def rebuilt() -> dict[str, Any] | None:
            r = await officer.get(path)
            return r.json() if r.status_code == 200 and r.json()["version"] >= 2 else None

        await eventually(rebuilt, what="the rebuilt packet")
        # once the plates room stored the read, the next trigger's rebuild counts it (vehicles leaving);
        # it hit no hotlist, so it is not listed: reading it is a search with a purpose and a case number

        async def stored() -> bool:
            from rtcc.plates.reads import get_read

            return await store.read(lambda s: get_read(s, read.event_id) is not None)

        await eventually(stored, what="the plate read stored")
        again = read.model_copy(update={"event_id": uuid.uuid4(), "plate": "DEF5678"})
        await publish(center, again)

        async def with_read() -> dict[str, Any] | None:
            r = await officer.get(path)
            return r.json() if (r.json()["plate_reads"]["others"] or 0) >= 1 else None

        packet = await eventually(with_read, what="the read counted in the packet")
        assert packet["plate_reads"]["items"] == [] and packet["plate_reads"]["hint"]
        assert "ABC1234" not in str(packet) and "DEF5678" not in str(packet)
        await eventually(lambda: _true(len(updates) >= 2), what="two packet_updated events")
        assert updates[0].ref_id == str(inc.incident_id) and updates[0].counts["earlier_incidents"] == 1
        assert "ABC1234" not in updates[-1].model_dump_json()  # the live event carries counts, not plates

        # reads far away or outside ±T minutes do not trigger a rebuild
        proc = center.center.services["operations"]
        assert isinstance(proc, OperationsProcessor)
        await eventually(lambda: _true(not proc._pending), what="no rebuild pending")
        for pos, dt in ((_offset(900.0), 1), (_offset(50.0), 60)):
            far_read = PlateRead(
                source="cam-2",
                device="cam-2",
                pos=Position(lat=pos[0], lon=pos[1]),
                plate="XYZ987",
                confidence=0.9,
                occurred_at=inc.occurred_at + timedelta(minutes=dt),
            )
            await proc._on_trigger(far_read.subject, far_read.to_json())
            assert ("gunshot", str(inc.incident_id)) not in proc._pending

        # reading a packet is audited; the auditor and strangers get nothing
        entries = await audit_of(admin, "read_packet")
        assert entries and entries[0]["actor"] == "officer1"
        assert entries[0]["record_id"] == f"gunshot:{inc.incident_id}"
        assert (await auditor.get(path)).status_code == 403
        async with httpx.AsyncClient(base_url=center.url) as anon:
            assert (await anon.get(path)).status_code == 401
        assert (await officer.get(f"/api/v1/packets/bogus/{inc.incident_id}")).status_code == 404
        assert (await officer.get(f"/api/v1/packets/gunshot/{uuid.uuid4()}")).status_code == 404
    finally:
        await sub.stop()
        for c in (officer, auditor, admin):
            await c.aclose()


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value


@pytest.mark.parametrize("backend", ["embedded"])
async def test_hit_packet(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    hit = HotlistHit(
        source="plates",
        read_id=uuid.uuid4(),
        device="cam-9",
        pos=Position(lat=POINT[0], lon=POINT[1]),
        plate="7ABC123",
        entry_plate="7ABC123",
        category="stolen_vehicle",
        match="exact",
    )
    await publish(center, hit)
    supervisor = clients[Role.supervisor]

    async def built() -> dict[str, Any] | None:
        r = await supervisor.get(f"/api/v1/packets/hit/{hit.event_id}")
        return r.json() if r.status_code == 200 else None

    packet = await eventually(built, what="the hit's packet")
    assert packet["kind"] == "hit" and packet["ref_id"] == str(hit.event_id)
    assert packet["earlier_incidents"]["items"] == []
