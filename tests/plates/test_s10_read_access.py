"""A stored read is looked at like a search: purpose and case number, or through a hit under review.

Audit finding (session 10): ``GET /plates/reads/{id}`` and its ``/image`` took ``purpose`` and
``case_number`` as optional, were open to officers (who may not search), and audited a null
purpose. Read ids leak through hit packets and the live feed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rtcc.errors import ValidationFailed
from rtcc.plates.ingest import image_header
from rtcc.roles import DeviceType, Role
from tests.conftest import Running
from tests.helpers import eventually
from tests.plates.render_helpers import car_with_plate, jpeg

CAM = (41.8800, -87.6300)
WHY = {"purpose": "stolen vehicle report 2026-001234", "case_number": "2026-001234"}


async def edge_read(center: Running, plate: str, cam_id: str = "lpr-s10") -> dict[str, Any]:
    """A camera uploads a frame with the plate it read itself; the stored read (crop and image kept)."""
    key = await center.center.provision_device(cam_id, DeviceType.plate_camera, "LPR s10", *CAM)
    r = await center.http.post(
        "/api/v1/plates/images",
        headers={"authorization": f"Device {key}"},
        files={"image": ("f.jpg", jpeg(car_with_plate(plate, size=(320, 240))), "image/jpeg")},
        data={"plate": plate, "box": "10,10,100,30", "confidence": "0.9"},
    )
    assert r.status_code == 201, r.text
    [read] = r.json()["reads"]
    assert read["has_crop"] and read["has_image"]
    return dict(read)


async def audit(admin: httpx.AsyncClient, action: str) -> list[dict[str, Any]]:
    r = await admin.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_read_needs_a_purpose_and_a_case_like_a_search(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    read = await edge_read(center, "RDA1234")
    one, image = f"/api/v1/plates/reads/{read['id']}", f"/api/v1/plates/reads/{read['id']}/image"
    officer, analyst, admin = clients[Role.officer], clients[Role.analyst], clients[Role.admin]

    # officers may not search the reads, so they may not look one up either, case or no case
    for url, params in ((one, {}), (image, {"kind": "crop"}), (image, {"kind": "vehicle", **WHY})):
        r = await officer.get(url, params=params)
        assert r.status_code == 403, (url, params, r.status_code)

    # an analyst is refused without a purpose and a case number, or with ones that say nothing;
    # each refusal is audited as a refused plate search (as GET /plates/search does)
    refusals = [
        (one, {}),
        (image, {"kind": "crop", "case_number": "2026-001234"}),
        (image, {"kind": "vehicle", "purpose": WHY["purpose"]}),
        (one, {"purpose": WHY["purpose"], "case_number": "n/a"}),
        (one, {"purpose": "xxxxx", "case_number": "2026-001234"}),
    ]
    for url, params in refusals:
        r = await analyst.get(url, params=params)
        assert r.status_code == 422, (url, params, r.status_code, r.text)
        assert r.json()["error"]["code"] == "validation_failed"
    msg = (await analyst.get(one)).json()["error"]["message"]
    assert "purpose" in msg and "case number" in msg
    refused = [e for e in await audit(admin, "plate_search_refused") if e["actor"] == "analyst1"]
    assert len(refused) == len(refusals) + 1
    assert all(e["outcome"] == "refused" and "/plates/reads/" in e["details"]["path"] for e in refused)
    assert not await audit(admin, "read_plate_read") and not await audit(admin, "read_plate_image")

    # with them: served, and audited with the purpose and the case number
    r = await analyst.get(one, params=WHY)
    assert r.status_code == 200 and r.json()["plate"] == "RDA1234"
    crop = await analyst.get(image, params={**WHY, "kind": "crop", "purpose_category": "stolen_vehicle"})
    assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    [seen] = await audit(admin, "read_plate_read")
    assert (seen["actor"], seen["record_id"]) == ("analyst1", read["id"])
    assert seen["purpose"] == f"criminal_investigation: {WHY['purpose']}"
    assert seen["details"]["case_number"] == "2026-001234"
    [photo] = await audit(admin, "read_plate_image")
    assert photo["purpose"] == f"stolen_vehicle: {WHY['purpose']}"
    assert photo["details"] == {"case_number": "2026-001234", "kind": "crop"}


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_hits_photos_are_served_for_hit_review_without_a_case(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer, analyst, admin = clients[Role.officer], clients[Role.analyst], clients[Role.admin]
    r = await admin.post(
        "/api/v1/hotlists/entries",
        json={"plate": "HIT5678", "category": "stolen_vehicle", "reason": "stolen 2026-11-02"},
    )
    assert r.status_code == 201, r.text
    read = await edge_read(center, "HIT5678")

    async def hit() -> dict[str, Any] | None:
        items = (await officer.get("/api/v1/hits")).json()["items"]
        return next((h for h in items if h["read_id"] == read["id"]), None)

    h = await eventually(hit, what="the read's hit")
    detail = (await officer.get(f"/api/v1/hits/{h['id']}")).json()
    assert detail["photos"] == {
        "crop": f"/api/v1/hits/{h['id']}/image?kind=crop",
        "vehicle": f"/api/v1/hits/{h['id']}/image?kind=vehicle",
    }
    # the officer reviewing the hit sees both photos, the same bytes an accountable search gets
    for kind, url in detail["photos"].items():
        got = await officer.get(url)
        assert got.status_code == 200, got.text
        assert got.headers["cache-control"] == "no-store"
        searched = await analyst.get(f"/api/v1/plates/reads/{read['id']}/image", params={**WHY, "kind": kind})
        assert searched.status_code == 200 and got.content == searched.content
    # ... audited on the read, with the hit as the reason
    by_officer = [e for e in await audit(admin, "read_plate_image") if e["actor"] == "officer1"]
    assert [e["details"]["kind"] for e in by_officer] == ["vehicle", "crop"]  # newest first
    for e in by_officer:
        assert e["record_id"] == read["id"] and e["details"]["hit_id"] == h["id"]
        assert e["purpose"] == f"hit review: hit {h['id']}"
    # the hit is no way to reach the read route without a case, nor other reads
    assert (await officer.get(f"/api/v1/plates/reads/{read['id']}/image")).status_code == 403
    unknown = await officer.get("/api/v1/hits/00000000-0000-4000-8000-000000000000/image")
    assert unknown.status_code == 404
    assert (await clients[Role.auditor].get(detail["photos"]["crop"])).status_code == 403


def test_an_unreadable_image_is_refused_with_a_clean_message() -> None:
    for data in (b"%PDF-1.4 hello", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, b"not an image at all"):
        with pytest.raises(ValidationFailed) as err:
            image_header(data, max_pixels=10_000_000)
        assert err.value.message == "not a readable image (JPEG, PNG or WebP expected)"
        assert "0x" not in err.value.message and "BytesIO" not in err.value.message
