"""Camera images over HTTPS: device-key auth, recognition, media, stored + published reads, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select

from rtcc.roles import DeviceType, Role
from rtcc.store.tables import AuditEntry, EventRecord
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.plates.render_helpers import car_with_plate, jpeg, road

CAM_POS = (41.8800, -87.6300)
PLATE = "7KDR582"


async def camera(center: Running, cam_id: str = "lpr-1", kind: DeviceType = DeviceType.plate_camera) -> str:
    return await center.center.provision_device(cam_id, kind, "test plate camera", *CAM_POS)


async def upload(
    center: Running,
    key: str,
    data: bytes,
    *,
    at: datetime | None = None,
    filename: str = "frame.jpg",
    **form: Any,
) -> httpx.Response:
    fields = {k: str(v) for k, v in form.items()}
    if at is not None:
        fields["time"] = at.isoformat()
    return await center.http.post(
        "/api/v1/plates/images",
        headers={"authorization": f"Device {key}"},
        files={"image": (filename, data, "image/jpeg")},
        data=fields,
    )


@pytest.mark.parametrize("backend", ["embedded", pytest.param("production", marks=pytest.mark.postgres)])
async def test_upload_reads_stores_publishes_and_is_audited(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    key = await camera(center)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    img = jpeg(car_with_plate(PLATE))
    r = await upload(center, key, img, at=at)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["duplicate"] is False and body["published"] == 1
    [read] = body["reads"]
    assert read["plate"] == PLATE and read["device_id"] == "lpr-1"
    assert (read["lat"], read["lon"]) == pytest.approx(CAM_POS)
    assert datetime.fromisoformat(read["read_at"]) == at
    assert read["has_crop"] and read["has_image"] and read["direction"] is None

    # the read is on the bus: the recorder stores its plate_read event
    store = center.center.store
    assert store is not None

    async def recorded() -> dict[str, Any] | None:
        def q(s: Any) -> dict[str, Any] | None:
            p = s.scalars(select(EventRecord.payload).where(EventRecord.type == "plate_read")).first()
            return dict(p) if p is not None else None

        return await store.read(q)

    ev = await eventually(recorded, what="the plate_read event recorded")
    assert ev["event_id"] == read["id"] and ev["plate"] == PLATE and ev["crop_ref"]

    # looking at a stored read is a search: analysts may, with a purpose and a case number; officers
    # and auditors may not; each view is audited with its purpose and case number
    analyst, officer, auditor = clients[Role.analyst], clients[Role.officer], clients[Role.auditor]
    why = {"purpose": "hit check on a stolen car", "case_number": "C-1"}
    got = await analyst.get(f"/api/v1/plates/reads/{read['id']}", params=why)
    assert got.status_code == 200 and got.json()["plate"] == PLATE
    assert (await officer.get(f"/api/v1/plates/reads/{read['id']}", params=why)).status_code == 403
    assert (await auditor.get(f"/api/v1/plates/reads/{read['id']}", params=why)).status_code == 403
    # ``case`` is the deprecated alias of ``case_number`` (older clients); two different ones are refused
    vehicle = await analyst.get(
        f"/api/v1/plates/reads/{read['id']}/image",
        params={"kind": "vehicle", "case": "C-2", "purpose": why["purpose"]},
    )
    assert vehicle.status_code == 200 and vehicle.content == img
    assert vehicle.headers["content-type"] == "image/jpeg"
    crop = await analyst.get(f"/api/v1/plates/reads/{read['id']}/image", params=why)
    assert crop.status_code == 200
    pixels = cv2.imdecode(np.frombuffer(crop.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None and 120 <= pixels.shape[1] <= 260 and pixels.shape[0] < 120  # the plate only
    both = await analyst.get(
        f"/api/v1/plates/reads/{read['id']}", params={**why, "case_number": "C-1", "case": "C-9"}
    )
    assert both.status_code == 422 and both.json()["error"]["code"] == "validation_failed"
    missing = await analyst.get("/api/v1/plates/reads/00000000-0000-4000-8000-000000000000", params=why)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    def audits(s: Any) -> list[tuple[str, str | None, str | None, str | None]]:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.resource == "plate_read").order_by(AuditEntry.seq)
        )
        return [(a.action, a.actor, a.purpose, (a.details or {}).get("case_number")) for a in rows]

    purpose = "criminal_investigation: hit check on a stolen car"
    assert await store.read(audits) == [
        ("read_plate_read", "analyst1", purpose, "C-1"),
        ("read_plate_image", "analyst1", purpose, "C-2"),
        ("read_plate_image", "analyst1", purpose, "C-1"),
    ]

    # the same upload again (a camera retrying): the same read, not recognized or stored twice
    again = await upload(center, key, img, at=at)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert [x["id"] for x in again.json()["reads"]] == [read["id"]]
    # the same image at another time is another pass
    later = await upload(center, key, img, at=at + timedelta(seconds=1))
    assert later.status_code == 201 and later.json()["reads"][0]["id"] != read["id"]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_moving_camera_position_heading_and_empty_scene(center: Running) -> None:
    key = await camera(center, "lpr-car-7")
    r = await upload(center, key, jpeg(car_with_plate("ABC1234")), lat=41.9, lon=-87.7, heading_deg=92.0)
    assert r.status_code == 201, r.text
    [read] = r.json()["reads"]
    assert read["plate"] == "ABC1234"
    assert (read["lat"], read["lon"], read["heading_deg"], read["direction"]) == (41.9, -87.7, 92.0, "E")
    # no plate in view: accepted, nothing read
    r = await upload(center, key, jpeg(road()))
    assert r.status_code == 201 and r.json()["reads"] == []
    # lat without lon
    r = await upload(center, key, jpeg(road(seed=2)), lat=41.9)
    assert r.status_code == 422 and "lat and lon" in r.json()["error"]["message"]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_bad_input_is_refused_clearly(start_center: StartCenter) -> None:
    center = await start_center(plates={"max_image_pixels": 100_000, "max_image_bytes": 400_000})
    key = await camera(center)
    ok = jpeg(car_with_plate(PLATE, size=(320, 240)))

    async def code(resp: httpx.Response) -> tuple[int, str]:
        return resp.status_code, resp.json()["error"]["code"]

    # device keys: none, unknown, and a device that is not a plate camera
    r = await center.http.post("/api/v1/plates/images", files={"image": ("a.jpg", ok, "image/jpeg")})
    assert await code(r) == (401, "unauthenticated")
    assert await code(await upload(center, "not-a-real-key-123456", ok)) == (401, "unauthenticated")
    sensor_key = await camera(center, "ac-9", DeviceType.acoustic_sensor)
    assert await code(await upload(center, sensor_key, ok)) == (403, "forbidden")
    # empty, corrupt, truncated, not an image
    assert await code(await upload(center, key, b"")) == (422, "validation_failed")
    assert await code(await upload(center, key, b"\xff\xd8\xff\xe0garbage" * 10)) == (
        422,
        "validation_failed",
    )
    assert await code(await upload(center, key, ok[: len(ok) // 3])) == (422, "validation_failed")
    assert await code(await upload(center, key, b"%PDF-1.4 hello")) == (422, "validation_failed")
    # enormous: too many pixels (checked from the header), too many bytes
    big = cv2.imencode(".png", np.zeros((400, 400, 3), np.uint8))[1].tobytes()
    r = await upload(center, key, big, filename="big.png")
    assert await code(r) == (413, "payload_too_large") and "pixels" in r.json()["error"]["message"]
    noisy = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (300, 330, 3), np.uint8))[1]
    assert len(noisy) > 280_000
    r = await upload(center, key, noisy.tobytes() + b"\0" * 150_000, filename="huge.png")
    assert await code(r) == (413, "payload_too_large")
    # times: without a zone, in the future
    r = await upload(center, key, ok, time="2026-11-21T10:00:00")
    assert await code(r) == (422, "validation_failed")
    assert await code(await upload(center, key, ok, at=datetime.now(UTC) + timedelta(hours=2))) == (
        422,
        "validation_failed",
    )
    # none of that stored anything; a good upload still works
    r = await upload(center, key, ok)
    assert r.status_code == 201, r.text
    store = center.center.store
    assert store is not None
    from rtcc.plates.reads import count_reads

    assert await store.read(count_reads) == len(r.json()["reads"])


async def test_edge_read_carries_the_region_the_camera_told(center: Running) -> None:
    key = await camera(center)
    img = jpeg(car_with_plate("EDG123", size=(320, 240)))
    r = await upload(center, key, img, plate="edg-123", box="10,10,100,30", confidence=0.8, region="tx")
    assert r.status_code == 201, r.text
    [read] = r.json()["reads"]
    assert (read["plate"], read["region"]) == ("EDG123", "TX")
    r = await upload(center, key, img, plate="EDG123", box="10,10,100,30", confidence=0.8, region="T@X")
    assert r.status_code == 422 and "region" in r.json()["error"]["message"]
