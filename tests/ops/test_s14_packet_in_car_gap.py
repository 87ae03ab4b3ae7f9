"""An incident packet lists the in-car cameras that ``GET /cameras/visible`` lists for the same time.

The packet used the default 120 s for how old an in-car camera's last position may be, not the
setting ``cameras.in_car_max_gap_s``, so a car that the camera registry showed was missing from the
incident's packet.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rtcc.ops.processor import OperationsProcessor
from rtcc.store.tables import EventRecord
from tests.conftest import StartCenter

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

LAT, LON = 33.5201, -86.8100


async def test_packet_cameras_follow_the_in_car_gap_setting(start_center: StartCenter) -> None:
    from rtcc.ops.packets import build_body

    run = await start_center(processors=("recorder", "operations"), cameras={"in_car_max_gap_s": 600})
    admin = await run.login("admin")
    async with admin:
        r = await admin.post(
            "/api/v1/devices",
            json={"id": "car-7", "type": "bodycam", "name": "car 7", "lat": 33.52, "lon": -86.81},
        )
        assert r.status_code == 201, r.text
        r = await admin.post(
            "/api/v1/cameras",
            json={
                "kind": "in_car",
                "name": "car 7 cam",
                "device_id": "car-7",
                "fov_deg": 360,
                "range_m": 100,
                "level": "registered",
            },
        )
        assert r.status_code == 201, r.text
        at = datetime.now(UTC) + timedelta(minutes=1)

        def heartbeat(s: object) -> None:  # the car's last position, 5 minutes before the incident
            s.add(  # type: ignore[attr-defined]
                EventRecord(
                    event_id=uuid.uuid4(),
                    occurred_at=at - timedelta(seconds=300),
                    type="device_heartbeat",
                    source="car-7",
                    device_id="car-7",
                    lat=33.5200,
                    lon=-86.8100,
                    payload={"heading_deg": 0.0},
                )
            )

        await run.center.store.write(heartbeat)
        v = await admin.get("/api/v1/cameras/visible", params={"lat": LAT, "lon": LON, "at": at.isoformat()})
        assert [c["name"] for c in v.json()["items"]] == ["car 7 cam"]

    ops = run.center.services["operations"]
    assert isinstance(ops, OperationsProcessor)
    assert ops.params.in_car_max_gap_s == 600
    body = run.center.store.run(lambda s: build_body(s, "gunshot", "x", LAT, LON, at, ops.params))
    assert [c["name"] for c in body["cameras"]["items"]] == ["car 7 cam"]
