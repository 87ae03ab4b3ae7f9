"""Devices connect over HTTPS: keys, scopes, bad input, duplicates, health, recording."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets

from rtcc.events import DeviceHeartbeat, Position, Pulse
from rtcc.roles import DeviceType, Role
from tests.api.test_error_envelope import assert_envelope
from tests.conftest import Running
from tests.helpers import eventually

HERE = Position(lat=33.5186, lon=-86.8104, alt_m=8.0)


async def add_device(admin: httpx.AsyncClient, device_id: str, dtype: DeviceType) -> str:
    r = await admin.post(
        "/api/v1/devices",
        json={"id": device_id, "type": dtype.value, "name": device_id, "lat": HERE.lat, "lon": HERE.lon},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def heartbeat(device_id: str, **kw: Any) -> dict[str, Any]:
    return DeviceHeartbeat(
        source=device_id,
        device=device_id,
        device_type=DeviceType.acoustic_sensor,
        pos=HERE,
        gps_lock=True,
        **kw,
    ).model_dump(mode="json")


def pulse(device_id: str, **kw: Any) -> dict[str, Any]:
    return Pulse(
        source=device_id, device=device_id, pos=HERE, peak_db=110.0, snr_db=30.0, duration_ms=4.0, **kw
    ).model_dump(mode="json")


async def send(
    c: httpx.AsyncClient, key: str | None, events: list[dict[str, Any]], **headers: str
) -> httpx.Response:
    h = dict(headers)
    if key is not None:
        h["authorization"] = f"Device {key}"
    return await c.post("/api/v1/ingest/events", json={"events": events}, headers=h)


async def test_device_events_flow_to_store_api_and_websocket(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-0001", DeviceType.acoustic_sensor)
    token = admin.headers["authorization"].split()[1]
    ws_url = center.url.replace("http", "ws") + "api/v1/ws"
    async with websockets.connect(ws_url, additional_headers={"authorization": f"Bearer {token}"}) as ws:
        hello = json.loads(await ws.recv())
        assert hello["kind"] == "hello" and "pulse" in hello["types"]
        p = pulse("ac-0001")
        r = await send(center.http, key, [heartbeat("ac-0001"), p])
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 2
        seen: dict[str, dict[str, Any]] = {}
        while not {"pulse", "device_status", "device_heartbeat"} <= set(seen):
            msg = json.loads(await ws.recv())
            seen[msg["event"]["type"]] = msg["event"]
        assert seen["pulse"]["event_id"] == p["event_id"]
        assert seen["device_status"]["status"] == "online"

    async def recorded() -> list[dict[str, Any]] | None:
        r = await admin.get("/api/v1/events", params={"types": "pulse"})
        items = r.json()["items"]
        return items if items else None

    items = await eventually(recorded, what="pulse recorded")
    assert items[0]["event_id"] == p["event_id"]
    dev = (await admin.get("/api/v1/devices/ac-0001")).json()
    assert dev["status"] == "online" and dev["attributes"]["gps_lock"] is True


async def test_wrong_revoked_and_missing_keys_are_refused_and_counted(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-0002", DeviceType.acoustic_sensor)
    assert_envelope(await send(center.http, None, [heartbeat("ac-0002")]), 401, "unauthenticated")
    assert_envelope(
        await send(center.http, key[:-4] + "AAAA", [heartbeat("ac-0002")], **{"x-device-id": "ac-0002"}),
        401,
        "unauthenticated",
    )
    assert (await send(center.http, key, [heartbeat("ac-0002")])).status_code == 202
    r = await admin.post("/api/v1/devices/ac-0002/revoke")
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert_envelope(await send(center.http, key, [heartbeat("ac-0002")]), 401, "unauthenticated")
    # a rotated key works again, the old one does not
    new_key = (await admin.post("/api/v1/devices/ac-0002/rotate-key")).json()["key"]
    assert (await send(center.http, new_key, [heartbeat("ac-0002")])).status_code == 202
    assert_envelope(await send(center.http, key, [heartbeat("ac-0002")]), 401)
    dev = (await admin.get("/api/v1/devices/ac-0002")).json()
    assert dev["rejected_count"] >= 1
    metrics = (await admin.get("/api/v1/system/metrics")).json()
    refused = sum(c["value"] for c in metrics["counters"] if c["name"] == "ingest_refused")
    assert refused >= 4


async def test_bad_events_get_clear_errors_and_good_ones_are_kept(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-0003", DeviceType.acoustic_sensor)
    cam_key = await add_device(admin, "lpr-001", DeviceType.plate_camera)
    now = datetime.now(UTC)
    good = pulse("ac-0003")
    bad = [
        {"type": "pulse", "source": "ac-0003"},  # missing fields
        {"type": "teleport"},  # unknown type
        pulse("ac-0003", occurred_at=now + timedelta(hours=2)),  # future
        pulse("ac-0003", occurred_at=now - timedelta(days=30)),  # too old
        {**pulse("ac-0003"), "pos": {"lat": 0.0, "lon": 0.0}},  # null island
        {**pulse("ac-0003"), "pos": {"lat": 123.0, "lon": 0.5}},  # impossible
        pulse("ac-0009"),  # another device's event
        "not an object",
    ]
    r = await send(center.http, key, [good, *bad])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 1
    assert [x["index"] for x in body["rejected"]] == list(range(1, 1 + len(bad)))
    assert "future" in body["rejected"][2]["reason"]
    # all bad: 422 with the reasons, nothing published
    r = await send(center.http, key, bad)
    b = assert_envelope(r, 422, "validation_failed")
    assert len(b["error"]["details"]["rejected"]) == len(bad)  # type: ignore[index]
    # duplicates: resending the accepted event is reported, not re-published
    r = await send(center.http, key, [good])
    assert_envelope(r, 409, "conflict")
    # scope: a plate camera may not send pulses
    r = await send(center.http, cam_key, [pulse("lpr-001")])
    b = assert_envelope(r, 422)
    assert "may not send" in b["error"]["message"]
    # batch over the configured limit
    r = await send(center.http, key, [pulse("ac-0003") for _ in range(1001)])
    assert_envelope(r, 422, "validation_failed")

    # what was accepted is stored exactly once
    async def stored() -> list[Any] | None:
        items = (await admin.get("/api/v1/events", params={"types": "pulse"})).json()["items"]
        return items or None

    items = await eventually(stored, what="pulse stored")
    assert [i["event_id"] for i in items] == [good["event_id"]]


async def test_duplicate_ids_within_a_batch(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    key = await add_device(clients[Role.admin], "ac-0004", DeviceType.acoustic_sensor)
    p = pulse("ac-0004")
    r = await send(center.http, key, [p, p, pulse("ac-0004", event_id=str(uuid.uuid4()))])
    assert r.status_code == 202 and r.json()["accepted"] == 2 and r.json()["duplicates"] == 1
