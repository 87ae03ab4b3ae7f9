"""A sensor reporting from the wrong place (issue 6, "Bad input").

The registered (surveyed) position is the reference for a fixed sensor: a pulse
reporting a position far from it is located at the registered one, counted and
flags the sensor; a heartbeat's GPS fix never moves a fixed sensor (it is kept as
the reported position) but still moves a patrol-car camera; a sensor with no
registered position has its pulses rejected and counted, never located. Every
pulse is still stored as received. Positions in metres east/north of the city
centre; tolerances stated where they are asserted.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from rtcc.events import DeviceHeartbeat, DevicePosition, Position, Pulse, parse_event
from rtcc.roles import DeviceType, Role
from rtcc.settings import AcousticSettings
from rtcc.store.tables import AuditEntry, Device, EventRecord
from tests.acoustic.test_pipeline_helpers import (
    BOTH,
    Array,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

LOCATE_TOLERANCE_M = 3.0
"""Noise-free arrivals from 9 sensors at their registered positions: the fix is within 3 m."""

JUMP_M = 2000.0
"""How far the misbehaving sensor's GPS puts it (east of its registered position)."""


def _moved(arr: Array, pulses: list[Pulse], sid: str, dx_m: float) -> list[Pulse]:
    """The pulses with ``sid``'s reported position moved ``dx_m`` metres east."""
    x, y = arr.xy[sid]
    lat, lon = arr.proj.to_latlon(x + dx_m, y)
    return [
        p.model_copy(update={"pos": Position(lat=lat, lon=lon, alt_m=p.pos.alt_m)}) if p.device == sid else p
        for p in pulses
    ]


async def _device(admin: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    r = await admin.get(f"/api/v1/devices/{sid}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def _incidents(officer: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
    return items


async def _stored_pulses(center: Running, ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
    def q(s: Any) -> dict[str, dict[str, Any]]:
        rows = s.scalars(select(EventRecord).where(EventRecord.event_id.in_(ids)))
        return {str(r.event_id): dict(r.payload) for r in rows}

    return await center.center.store.read(q)


@BOTH
async def test_far_reported_position_is_located_at_the_registered_one(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.95)
    admin, officer = clients[Role.admin], clients[Role.officer]
    bad = "ac-t05"  # the centre sensor: its pulse matters to the geometry
    flags = await _watch_flags(center)
    src = (120.0, -80.0)
    pulses = _moved(arr, shot_pulses(arr, src), bad, JUMP_M)
    pulses.sort(key=lambda p: p.device != bad)  # posted first: in the window, never a late straggler
    await post_pulses(center, arr, pulses)

    async def one() -> list[dict[str, Any]] | None:
        return await _incidents(officer) or None

    [inc] = await eventually(one, what="the incident")
    x, y, _ = arr.proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), src) <= LOCATE_TOLERANCE_M
    # the bad sensor's pulse was used, at its registered position (not dropped as an outlier)
    [shot] = pipe.outcomes[0].shots
    assert bad in shot.sensors and bad in inc["sensors"]
    # counted for that sensor only, and the device is flagged with the distance
    metrics = center.center.metrics
    assert metrics.get("acoustic_pulse_position_mismatch", sensor=bad) == 1
    assert metrics.get("acoustic_pulse_position_mismatch") == 1
    dev = await _device(admin, bad)
    assert dev["position_mismatch"] is True and dev["attributes"]["position_mismatch"] is True
    assert dev["attributes"]["position_mismatch_m"] == pytest.approx(JUMP_M, abs=20.0)
    x0, y0 = arr.xy[bad]
    assert math.dist(arr.proj.to_xyz(dev["lat"], dev["lon"])[:2], (x0, y0)) < 0.01  # not moved
    assert (await _device(admin, "ac-t01"))["position_mismatch"] is False
    # the health view (the device list) shows it too
    listed = {d["id"]: d for d in (await admin.get("/api/v1/devices")).json()["items"]}
    assert listed[bad]["position_mismatch"] is True
    # and dashboards hear of it live: one event with the distance and the registered position
    [flag] = await eventually(lambda: _some(flags), what="the device_position event")
    assert (flag.device, flag.mismatch) == (bad, True)
    assert flag.offset_m == pytest.approx(JUMP_M, abs=20.0)
    assert flag.pos is not None
    assert math.dist(arr.proj.to_xyz(flag.pos.lat, flag.pos.lon)[:2], (x0, y0)) < 0.01
    # every pulse is stored as received (the far position included)
    stored = await eventually(lambda: _all_stored(center, pulses), what="the pulses recorded as received")
    far = next(p for p in pulses if p.device == bad)
    assert stored[str(far.event_id)]["pos"]["lon"] == pytest.approx(far.pos.lon)
    # later pulses from where it is registered clear the flag (a new shot elsewhere)
    src2 = (-250.0, 260.0)
    await post_pulses(center, arr, shot_pulses(arr, src2, t_emit=datetime.now(UTC) - timedelta(seconds=4)))

    async def two() -> list[dict[str, Any]] | None:
        items = await _incidents(officer)
        return items if len(items) == 2 else None

    await eventually(two, what="the second incident")

    async def cleared() -> dict[str, Any] | None:
        d = await _device(admin, bad)
        return d if d["position_mismatch"] is False else None

    dev = await eventually(cleared, what="the flag cleared")
    assert dev["attributes"]["position_mismatch_m"] < 1.0
    assert metrics.get("acoustic_pulse_position_mismatch") == 1
    both = await eventually(lambda: _some(flags, 2), what="the cleared flag's event")
    assert [(f.device, f.mismatch) for f in both] == [(bad, True), (bad, False)]  # once each way
    assert both[1].offset_m is not None and both[1].offset_m < 1.0


async def _watch_flags(center: Running) -> list[DevicePosition]:
    """Every ``device_position`` event published from now on, in order."""
    seen: list[DevicePosition] = []

    async def got(subject: str, payload: bytes) -> None:
        ev = parse_event(payload)
        if isinstance(ev, DevicePosition):
            seen.append(ev)

    await center.center.bus.subscribe("rtcc.events.device_position", got)
    return seen


async def _some(seen: list[DevicePosition], n: int = 1) -> list[DevicePosition] | None:
    return list(seen) if len(seen) >= n else None


async def _all_stored(center: Running, pulses: list[Pulse]) -> dict[str, dict[str, Any]] | None:
    stored = await _stored_pulses(center, [p.event_id for p in pulses])
    return stored if len(stored) == len(pulses) else None


async def _heartbeat(center: Running, key: str, sid: str, dtype: DeviceType, lat: float, lon: float) -> None:
    hb = DeviceHeartbeat(
        source=sid, device=sid, device_type=dtype, pos=Position(lat=lat, lon=lon), gps_lock=True
    )
    r = await center.http.post(
        "/api/v1/ingest/events",
        json={"events": [hb.model_dump(mode="json")]},
        headers={"authorization": f"Device {key}"},
    )
    assert r.status_code == 202, r.text


@BOTH
async def test_heartbeat_moves_a_patrol_camera_but_not_a_fixed_sensor(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    admin = clients[Role.admin]
    sid = "ac-t01"
    x0, y0 = arr.xy[sid]
    car_lat, car_lon = arr.proj.to_latlon(0.0, 0.0)
    car_key = await center.center.provision_device(
        "car-12-cam", DeviceType.camera, "car 12", car_lat, car_lon
    )
    far_lat, far_lon = arr.proj.to_latlon(x0 + JUMP_M, y0)
    await _heartbeat(center, arr.keys[sid], sid, DeviceType.acoustic_sensor, far_lat, far_lon)
    new_lat, new_lon = arr.proj.to_latlon(500.0, 0.0)
    await _heartbeat(center, car_key, "car-12-cam", DeviceType.camera, new_lat, new_lon)

    async def reported() -> dict[str, Any] | None:
        d = await _device(admin, sid)
        return d if "reported_lat" in d["attributes"] else None

    dev = await eventually(reported, what="the sensor's heartbeat applied")
    assert dev["status"] == "online"
    # the fixed sensor stays where it was registered; the GPS fix is kept as reported
    assert math.dist(arr.proj.to_xyz(dev["lat"], dev["lon"])[:2], (x0, y0)) < 0.01
    assert (dev["attributes"]["reported_lat"], dev["attributes"]["reported_lon"]) == pytest.approx(
        (far_lat, far_lon)
    )
    assert dev["position_error_m"] == pytest.approx(JUMP_M, abs=20.0)

    async def moved() -> dict[str, Any] | None:
        d = await _device(admin, "car-12-cam")
        return d if d["lat"] != pytest.approx(car_lat, abs=1e-9) else None

    car = await eventually(moved, what="the camera's heartbeat applied")
    assert (car["lat"], car["lon"]) == pytest.approx((new_lat, new_lon))
    assert "reported_lat" not in car["attributes"] and car["position_error_m"] is None
    # only an admin sets the registered position (audited with the reason); it clears the error
    body = {"lat": far_lat, "lon": far_lon, "reason": "re-surveyed after the pole was moved"}
    flags = await _watch_flags(center)
    assert (
        await clients[Role.supervisor].put(f"/api/v1/devices/{sid}/position", json=body)
    ).status_code == 403
    assert (await admin.put("/api/v1/devices/no-such/position", json=body)).status_code == 404
    r = await admin.put(f"/api/v1/devices/{sid}/position", json=body)
    assert r.status_code == 200, r.text
    assert (r.json()["lat"], r.json()["lon"]) == pytest.approx((far_lat, far_lon))
    assert r.json()["position_error_m"] is None and r.json()["position_mismatch"] is False
    # dashboards move the marker live: one event, for the one change that was made
    [moved_ev] = await eventually(lambda: _some(flags), what="the device_position event")
    assert (moved_ev.device, moved_ev.mismatch, moved_ev.source) == (sid, False, "api")
    assert moved_ev.pos is not None
    assert (moved_ev.pos.lat, moved_ev.pos.lon) == pytest.approx((far_lat, far_lon))

    def audits(s: Any) -> list[tuple[str, str | None, Any]]:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "set_device_position"))
        return [(a.actor, a.record_id, (a.details or {}).get("reason")) for a in rows]

    assert await center.center.store.read(audits) == [("admin", sid, body["reason"])]


@BOTH
async def test_sensor_without_registered_position_is_rejected_not_located(
    center: Running, clients: dict[Role, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.95)
    officer = clients[Role.officer]
    metrics = center.center.metrics
    bus = center.center.bus
    assert bus is not None
    caplog.set_level(logging.WARNING, logger="rtcc.acoustic.pipeline")
    # a whole shot from 9 sensors that were never registered (straight on the bus, as a stray
    # bridge or a replay would put them): counted rejections, nothing located, no incident
    ghosts = Array({}, {f"ghost{i}": xy for i, xy in enumerate(arr.xy.values())}, arr.proj)
    stray = shot_pulses(ghosts, (60.0, 60.0))
    for p in stray:
        await bus.publish(p.subject, p.to_json(), msg_id=str(p.event_id))

    async def rejected(n: int) -> bool:
        return metrics.get("acoustic_pulse_rejected", reason="unregistered_sensor") >= n

    await eventually(lambda: rejected(len(stray)), what="the stray pulses rejected")
    assert metrics.get("acoustic_pulse_rejected", reason="unregistered_sensor") == len(stray)
    assert not pipe._clusters and not pipe.outcomes
    assert any(
        "ghost0" in r.getMessage() and "no registered position" in r.getMessage() for r in caplog.records
    )
    # a registered sensor whose position was never set (e.g. imported without a survey)
    nopos = "ac-t09"

    def clear(s: Any) -> None:
        s.execute(update(Device).where(Device.id == nopos).values(lat=None, lon=None))

    await center.center.store.write(clear)
    await pipe.refresh_registry()
    src = (-100.0, 50.0)
    pulses = shot_pulses(arr, src)
    await post_pulses(center, arr, pulses)

    async def one() -> list[dict[str, Any]] | None:
        return await _incidents(officer) or None

    [inc] = await eventually(one, what="the incident of the registered sensors")
    x, y, _ = arr.proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), src) <= LOCATE_TOLERANCE_M
    assert nopos not in inc["sensors"] and len(inc["sensors"]) >= 3
    await eventually(lambda: rejected(len(stray) + 1), what="the unsurveyed sensor's pulse rejected")
    assert metrics.get("acoustic_pulse_rejected", reason="unregistered_sensor") == len(stray) + 1
    # none of it lost: every pulse (stray and rejected ones too) is stored as received
    await eventually(lambda: _all_stored(center, stray + pulses), what="every pulse recorded")


def test_position_tolerance_is_a_bounded_setting() -> None:
    assert AcousticSettings().position_tolerance_m == 50.0
    for bad in (0.0, -1.0, 1e6):
        with pytest.raises(ValidationError):
            AcousticSettings(position_tolerance_m=bad)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_within_the_configured_tolerance_the_reported_position_is_used(
    start_center: StartCenter,
) -> None:
    center = await start_center(acoustic={"position_tolerance_m": 1500.0})
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    assert pipe.position_tolerance_m == 1500.0  # the setting reaches the pipeline
    use_classifier(pipe, 0.95)
    bad = "ac-t05"
    pulses = _moved(arr, shot_pulses(arr, (120.0, -80.0)), bad, 1000.0)
    await post_pulses(center, arr, pulses)
    metrics = center.center.metrics

    async def taken() -> bool:
        return metrics.get("acoustic_pulses") >= len(pulses)

    await eventually(taken, what="the pulses taken into a window")
    assert metrics.get("acoustic_pulse_position_mismatch") == 0  # 1 with the default 50 m

    def flagged(s: Any) -> Any:
        dev = s.get(Device, bad)
        return (dev.attributes or {}).get("position_mismatch")

    assert await center.center.store.read(flagged) is None


async def test_sensors_registered_after_the_last_load_lose_no_pulse(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    # the pipeline's registry is loaded, then sensors are registered (as the simulator does at
    # start-up) and at once send several pulses each: every pulse waits for a fresh load instead
    # of being rejected from the stale one
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.95)
    await pipe.refresh_registry()
    arr = await provision_array(center, "ac-n", refresh=False)
    proj, keys = arr.proj, arr.keys
    src = (40.0, -150.0)
    await post_pulses(center, arr, shot_pulses(arr, src, rounds=(0.0, 0.4, 0.8)))

    async def one() -> list[dict[str, Any]] | None:
        return await _incidents(clients[Role.officer]) or None

    [inc] = await eventually(one, what="the incident of the newly registered sensors")
    x, y, _ = proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), src) <= LOCATE_TOLERANCE_M
    assert sorted(inc["sensors"]) == sorted(keys)
    assert center.center.metrics.get("acoustic_pulse_rejected", reason="unregistered_sensor") == 0
