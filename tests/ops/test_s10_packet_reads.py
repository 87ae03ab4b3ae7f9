"""The incident packet lists the reads that hit a hotlist and only counts the others.

Audit finding (session 10): any operations role, officer included, who opened a hit or gunshot
packet got every plate read within 300 m and ±10 minutes — plate, camera, time, position, image
refs — with no purpose or case number: an area-and-time search of the reads around the search
ledger. Reads that hit a hotlist are alerts already; the others are a count with a hint.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rtcc.events import PlateRead, Position
from rtcc.roles import DeviceType, Role
from rtcc.store.tables_ops import PacketRow
from tests.conftest import Running
from tests.helpers import eventually
from tests.ops.helpers import POINT

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

NEAR = Position(lat=POINT[0] + 0.0005, lon=POINT[1])  # ~55 m north
FAR = Position(lat=POINT[0] + 0.03, lon=POINT[1])  # ~3.3 km north


def read(plate: str, pos: Position = NEAR, **kw: Any) -> PlateRead:
    return PlateRead(source="lpr-p1", device="lpr-p1", pos=pos, plate=plate, confidence=0.9, **kw)


async def post(center: Running, key: str, reads: list[PlateRead]) -> None:
    body = {"events": [json.loads(r.to_json()) for r in reads]}
    r = await center.http.post("/api/v1/ingest/events", json=body, headers={"authorization": f"Device {key}"})
    assert r.status_code == 202, r.text


async def test_hit_packet_lists_hits_and_counts_other_reads(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer, admin = clients[Role.officer], clients[Role.admin]
    r = await admin.post(
        "/api/v1/hotlists/entries",
        json={"plate": "PKT1234", "category": "stolen_vehicle", "reason": "stolen 2026-11-02"},
    )
    assert r.status_code == 201, r.text
    key = await center.center.provision_device("lpr-p1", DeviceType.plate_camera, "LPR p1", *POINT)
    store = center.center.store
    assert store is not None
    # vehicles passing the place: two nearby, one far away, one long before
    now = datetime.now(UTC)
    passing = [
        read("OTHER11", occurred_at=now - timedelta(minutes=2)),
        read("OTHER22", occurred_at=now - timedelta(minutes=1)),
        read("FARAWAY3", pos=FAR, occurred_at=now - timedelta(minutes=1)),
        read("EARLIER4", occurred_at=now - timedelta(hours=2)),
    ]
    await post(center, key, passing)

    async def stored() -> bool:
        from rtcc.plates.reads import count_reads

        return await store.read(count_reads) == len(passing)

    await eventually(stored, what="the passing reads stored")
    wanted = read("PKT1234", occurred_at=now)
    await post(center, key, [wanted])

    async def hit() -> dict[str, Any] | None:
        items = (await officer.get("/api/v1/hits")).json()["items"]
        return next((h for h in items if h["read_id"] == str(wanted.event_id)), None)

    h = await eventually(hit, what="the hit")
    path = f"/api/v1/packets/hit/{h['id']}"

    async def built() -> httpx.Response | None:
        got = await officer.get(path)
        return got if got.status_code == 200 else None

    resp = await eventually(built, what="the hit's packet")
    sec = resp.json()["plate_reads"]
    # the hit read is listed (an alert already); the two other nearby reads are only counted
    assert [x["plate"] for x in sec["items"]] == ["PKT1234"]
    assert all(x["hit"] is True for x in sec["items"])
    assert sec["others"] == 2
    assert "purpose" in sec["hint"] and "case number" in sec["hint"]
    for plate in ("OTHER11", "OTHER22", "FARAWAY3", "EARLIER4"):
        assert plate not in resp.text
    for r_ in passing:
        assert str(r_.event_id) not in resp.text
    entries = (await admin.get("/api/v1/audit", params={"action": "read_packet"})).json()["items"]
    assert entries[0]["details"]["hit_reads"] == 1 and entries[0]["details"]["other_reads_counted"] == 2


async def test_a_packet_stored_before_lists_no_other_read(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """A packet built by the older code (every read nearby listed) is served without those reads."""
    store = center.center.store
    assert store is not None
    at = datetime.now(UTC)
    ref = str(uuid.uuid4())

    def item(plate: str, hit: bool) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "plate": plate, "hit": hit, "device_id": "lpr-x", "lat": 1.0}

    empty: dict[str, Any] = {"items": [], "note": None}
    body = {
        "kind": "gunshot",
        "ref_id": ref,
        "at": at.isoformat(),
        "pos": {"lat": POINT[0], "lon": POINT[1]},
        "params": {"radius_m": 300.0, "window_min": 10.0, "history_days": 90},
        "cameras": empty,
        "plate_reads": {
            "items": [item("OLDHIT1", True), item("BYSTAND2", False), item("BYSTAND3", False)],
            "note": None,
        },
        "bodycams": empty,
        "earlier_incidents": empty,
        "version": 1,
        "built_at": at.isoformat(),
    }
    row = PacketRow(
        kind="gunshot",
        ref_id=ref,
        occurred_at=at,
        lat=POINT[0],
        lon=POINT[1],
        body=body,
        version=1,
        built_at=at,
    )
    store.run(lambda s: s.add(row))
    r = await clients[Role.officer].get(f"/api/v1/packets/gunshot/{ref}")
    assert r.status_code == 200, r.text
    sec = r.json()["plate_reads"]
    assert [x["plate"] for x in sec["items"]] == ["OLDHIT1"] and sec["others"] == 2 and sec["hint"]
    assert "BYSTAND" not in r.text
