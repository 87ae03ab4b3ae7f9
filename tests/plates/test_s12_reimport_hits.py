"""Audit findings (session 12): a routine re-import cut pending hits off from their entries, and a
camera's retried upload without a time made a second read.

* Re-importing a source (even the same file) gave every entry a new id: a hit waiting for its
  decision showed ``entry: None`` and lost its state comparison (``state_mismatch`` True → False),
  and a hit whose vehicle had left the list could still be confirmed.
* ``POST /plates/images`` without ``time`` keyed the upload by its arrival time: a camera re-posting
  after a lost answer made a second read (a second hit and alert).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from rtcc.roles import DeviceType, Role
from tests.conftest import StartCenter
from tests.plates.test_hits import hits_of, plate_read, post_reads

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def _import(admin: object, csv: bytes) -> None:
    r = await admin.post(  # type: ignore[attr-defined]
        "/api/v1/hotlists/tx-state/import", params={"format": "csv"}, files={"file": ("tx.csv", csv)}
    )
    assert r.status_code == 200, r.text


async def test_a_re_import_keeps_pending_hits_on_their_entries(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates"))
    c.add_user("officer1", Role.officer)
    admin, officer = await c.login("admin"), await c.login("officer1")
    try:
        listed = (
            b"plate,state,category,reason\n"
            b"ABC1234,AL,stolen_vehicle,taken 1st Ave\nXYZ987,TX,stolen_plate,x\n"
        )
        await _import(admin, listed)
        key = await c.center.provision_device("lpr-ri", DeviceType.plate_camera, "pole", 33.5, -86.8)
        await post_reads(
            c, key, [plate_read("ABC1234", "lpr-ri", region="TX"), plate_read("XYZ987", "lpr-ri")]
        )
        hits = {h["plate"]: h for h in await hits_of(officer, 2)}
        assert hits["ABC1234"]["state_mismatch"] is True and hits["ABC1234"]["entry_removed"] is False

        await _import(admin, listed)  # the nightly re-import of the same list
        r = await officer.get(f"/api/v1/hits/{hits['ABC1234']['id']}")
        assert r.status_code == 200, r.text
        again = r.json()
        assert again["entry"] is not None and again["entry"]["reason"] == "taken 1st Ave"
        assert again["entry_state"] == "AL" and again["state_mismatch"] is True  # "likely another car" stays

        # XYZ987 recovered: the next list no longer has it
        await _import(admin, b"plate,state,category,reason\nABC1234,AL,stolen_vehicle,taken 1st Ave\n")
        gone = (await officer.get(f"/api/v1/hits/{hits['XYZ987']['id']}")).json()
        assert gone["entry"] is None and gone["entry_removed"] is True
        body = {"decision": "confirmed", "reason": "looks like the car"}
        r = await officer.post(f"/api/v1/hits/{hits['XYZ987']['id']}/decision", json=body)
        assert r.status_code == 409 and "left the list" in r.json()["error"]["message"]
        r = await officer.post(
            f"/api/v1/hits/{hits['XYZ987']['id']}/decision",
            json={"decision": "rejected", "reason": "no longer on the list"},
        )
        assert r.status_code == 200 and r.json()["status"] == "rejected"
    finally:
        await admin.aclose()
        await officer.aclose()


async def test_a_retried_upload_without_a_time_is_a_duplicate(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates"))
    key = await c.center.provision_device("lpr-rt", DeviceType.plate_camera, "pole", 33.5, -86.8)
    img = np.full((240, 320, 3), 90, np.uint8)
    ok, jpg = cv2.imencode(".jpg", img)
    assert ok
    files = {"image": ("car.jpg", io.BytesIO(jpg.tobytes()), "image/jpeg")}
    form = {"plate": "ABC1234", "box": "10,10,100,30", "confidence": "0.9"}
    headers = {"authorization": f"Device {key}"}
    first = await c.http.post("/api/v1/plates/images", data=form, files=files, headers=headers)
    assert first.status_code == 201, first.text
    files = {"image": ("car.jpg", io.BytesIO(jpg.tobytes()), "image/jpeg")}
    second = await c.http.post("/api/v1/plates/images", data=form, files=files, headers=headers)
    assert second.status_code == 200, second.text
    assert second.json()["duplicate"] is True
    assert [r["id"] for r in second.json()["reads"]] == [r["id"] for r in first.json()["reads"]]
