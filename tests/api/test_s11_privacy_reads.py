"""Audit findings: officers' locations and plates were read without an audit entry.

* ``GET /events?types=device_heartbeat&device_id=bwc-01`` returned a body cam's position history,
  and the live WebSocket streamed it, unaudited (a heartbeat was never personal);
* ``GET /devices/{id}`` showed a unit's location unaudited (the list was audited);
* a hit alert's title names the plate, and ``GET /alerts``, ``GET /alerts/{id}``,
  ``/feeds/alerts.json`` and ``/feeds/cap/{id}.xml`` served it unaudited;
* ``POST /alerts/{id}/assign {"unit": "   "}`` assigned the alert to unit "".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import websockets

from rtcc.events import DeviceHeartbeat, Position
from rtcc.roles import DeviceType, Role
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.ops.helpers import audit_of, make_alert, publish, queued

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

HERE = Position(lat=33.5186, lon=-86.8104)


async def _heartbeat(c: Running, key: str, device: str, device_type: DeviceType) -> None:
    hb = DeviceHeartbeat(source=device, device=device, device_type=device_type, pos=HERE, battery_pct=80)
    body = {"events": [json.loads(hb.to_json())]}
    r = await c.http.post("/api/v1/ingest/events", json=body, headers={"authorization": f"Device {key}"})
    assert r.status_code == 202, r.text


async def _stored(client: httpx.AsyncClient, device: str) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        r = await client.get("/api/v1/events", params={"types": "device_heartbeat", "device_id": device})
        assert r.status_code == 200, r.text
        return r.json()["items"] or None

    items: list[dict[str, Any]] = await eventually(probe, what=f"{device}'s heartbeat stored")
    return items


async def test_unit_heartbeats_and_unit_records_are_audited_reads(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "health"))
    c.add_user("officer1", Role.officer)
    c.add_user("auditor1", Role.auditor)
    officer, admin, auditor = await c.login("officer1"), await c.login("admin"), await c.login("auditor1")
    try:
        cam = await c.center.provision_device("bwc-01", DeviceType.bodycam, "Body cam 1", HERE.lat, HERE.lon)
        mic = await c.center.provision_device(
            "ac-01", DeviceType.acoustic_sensor, "Mic 1", HERE.lat, HERE.lon
        )
        await _heartbeat(c, cam, "bwc-01", DeviceType.bodycam)
        await _heartbeat(c, mic, "ac-01", DeviceType.acoustic_sensor)

        # a fixed sensor's heartbeats are not personal: no entry
        assert (await _stored(officer, "ac-01"))[0]["device"] == "ac-01"
        assert await audit_of(admin, "read_events") == []
        # a body cam's are its officer's positions: the read is audited, with whose
        assert (await _stored(officer, "bwc-01"))[0]["pos"]["lat"] == pytest.approx(HERE.lat)
        entries = await audit_of(admin, "read_events")
        assert entries and all(e["actor"] == "officer1" for e in entries)
        assert entries[0]["details"]["types"] == ["device_heartbeat"]
        assert entries[0]["details"]["units"] == ["bwc-01"]
        # the auditor's role does not read positions (as GET /bodycams)
        r = await auditor.get("/api/v1/events", params={"types": "device_heartbeat"})
        assert r.status_code == 403 and r.json()["error"]["code"]

        # one device: audited when it is a unit, as the list
        before = len(await audit_of(admin, "read_unit_locations"))
        r = await officer.get("/api/v1/devices/ac-01")
        assert r.status_code == 200, r.text
        assert len(await audit_of(admin, "read_unit_locations")) == before
        r = await officer.get("/api/v1/devices/bwc-01")
        assert r.status_code == 200 and r.json()["lat"] == pytest.approx(HERE.lat)
        unit_reads = await audit_of(admin, "read_unit_locations")
        assert len(unit_reads) == before + 1
        assert unit_reads[0]["actor"] == "officer1" and unit_reads[0]["record_id"] == "bwc-01"
    finally:
        for client in (officer, admin, auditor):
            await client.aclose()


async def test_live_unit_positions_and_alerts_are_audited_on_subscribe(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    url = center.url.replace("http", "ws") + "api/v1/ws"
    officer = clients[Role.officer]
    for types in ("device_heartbeat", "alert", "device_status"):
        headers = {"authorization": officer.headers["authorization"]}
        async with websockets.connect(f"{url}?types={types}", additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["types"] == [types]
    entries = await audit_of(clients[Role.admin], "subscribe_live")
    subscribed = sorted(t for e in entries if e["actor"] == "officer1" for t in e["details"]["types"])
    assert subscribed == ["alert", "device_heartbeat"]  # device_status holds no position: no entry


async def test_hit_alerts_name_a_plate_and_every_read_is_audited(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer, admin = clients[Role.officer], clients[Role.admin]
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    gunfire = make_alert("gunshot")
    await publish(center, gunfire)
    await queued(center, officer, gunfire.alert_id)
    feed = await officer.get("/api/v1/feeds/alerts.json", params={"since": since})
    assert feed.status_code == 200 and len(feed.json()["items"]) == 1
    r = await officer.get(f"/api/v1/feeds/cap/{gunfire.alert_id}.xml")
    assert r.status_code == 200
    assert await audit_of(admin, "read_hit_alerts") == []  # no plate served: nothing to log

    hit = make_alert(
        "hotlist_hit", title="Hotlist hit OJC7449 (stolen vehicle) at lpr-1 — verify before action"
    )
    await publish(center, hit)
    await queued(center, officer, hit.alert_id)
    hit_id = str(hit.alert_id)

    async def entries() -> list[dict[str, Any]]:
        return [e for e in await audit_of(admin, "read_hit_alerts") if e["actor"] == "officer1"]

    paths = {e["details"]["path"] for e in await entries()}
    assert f"/api/v1/alerts/{hit_id}" in paths  # queued() read the alert
    for path, params in (
        ("/api/v1/alerts", {}),
        ("/api/v1/feeds/alerts.json", {"since": since}),
        (f"/api/v1/feeds/cap/{hit_id}.xml", {}),
    ):
        r = await officer.get(path, params=params)
        assert r.status_code == 200 and "OJC7449" in r.text
        logged = [e for e in await entries() if e["details"]["path"] == path]
        assert len(logged) == 1, path
        assert logged[0]["details"]["alerts"] == [hit_id]  # which alerts: the hit, not the gunfire
    # the event history serves the stored alert event too: audited with the alert
    r = await officer.get("/api/v1/events", params={"types": "alert"})
    assert r.status_code == 200 and "OJC7449" in r.text
    reads = [e for e in await audit_of(admin, "read_events") if e["actor"] == "officer1"]
    assert reads and reads[0]["details"]["types"] == ["alert"] and reads[0]["details"]["alerts"] == [hit_id]


async def test_a_blank_unit_is_refused(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    officer = clients[Role.officer]
    alert = make_alert("gunshot")
    await publish(center, alert)
    await queued(center, officer, alert.alert_id)
    for blank in ("   ", "\t", ""):
        r = await officer.post(f"/api/v1/alerts/{alert.alert_id}/assign", json={"unit": blank})
        assert r.status_code == 422, r.text
        assert set(r.json()["error"]) >= {"code", "message", "details"}
    assert (await officer.get(f"/api/v1/alerts/{alert.alert_id}")).json()["assigned_unit"] is None
    r = await officer.post(f"/api/v1/alerts/{alert.alert_id}/assign", json={"unit": "  B-12 "})
    assert r.status_code == 200 and r.json()["assigned_unit"] == "B-12"
    assert UUID(r.json()["id"]) == alert.alert_id
