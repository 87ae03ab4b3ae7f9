"""Community cameras end to end: register (no account) → verify by the mailed link or code →
approve → footage request mailed → clip uploaded → clip read (audited) → withdrawal deletes all.

Mail goes through a real SMTP server on loopback (aiosmtpd); links are read from the mails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtcc.roles import Role
from tests.cameras.conftest import Mailbox, mp4_clip, smtp_settings
from tests.cameras.helpers import EMAIL, footage_request, registration, signed_in
from tests.conftest import Running, StartCenter
from tests.helpers import eventually


async def _clients(center: Running) -> dict[Role, httpx.AsyncClient]:
    out = {Role.admin: await center.login("admin")}
    for role in (Role.supervisor, Role.analyst, Role.officer, Role.auditor):
        center.add_user(f"{role.value}1", role)
        out[role] = await center.login(f"{role.value}1")
    return out


async def _audit(admin: httpx.AsyncClient, action: str) -> list[dict[str, Any]]:
    r = await admin.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_register_verify_approve_request_upload_withdraw(
    start_center: StartCenter, smtp: Mailbox, tmp_path: Path
) -> None:
    center = await start_center(processors=("recorder",), cameras=smtp_settings(smtp))
    c = await _clients(center)
    anon = center.http
    try:
        r = await anon.post("/api/v1/community/registrations", json=registration())
        assert r.status_code == 201, r.text
        reg_id = r.json()["registration_id"]
        assert r.json()["status"] == "pending_verification"
        token = smtp.link_param(EMAIL, "verify")
        assert "enter the code" in Mailbox.body(smtp.to(EMAIL)[-1])

        # not verified yet: no manage link works, an admin cannot approve
        r = await c[Role.admin].post(f"/api/v1/cameras/{reg_id}/approve", json={})
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"

        r = await anon.post("/api/v1/community/verify", json={"token": token})
        assert r.status_code == 200, r.text
        manage = r.json()["manage_token"]
        assert r.json()["status"] == "pending_approval"
        assert smtp.link_param(EMAIL, "manage") == manage
        # the link is one-time
        r = await anon.post("/api/v1/community/verify", json={"token": token})
        assert r.status_code == 404

        # contact details: admins and supervisors only, audited
        r = await c[Role.officer].get(f"/api/v1/cameras/{reg_id}", params={"include_contact": True})
        assert r.status_code == 403
        r = await c[Role.officer].get(f"/api/v1/cameras/{reg_id}")
        assert r.status_code == 200 and r.json()["email"] is None and r.json()["status"] == "pending_approval"
        r = await c[Role.supervisor].get(f"/api/v1/cameras/{reg_id}", params={"include_contact": True})
        assert r.json()["email"] == EMAIL and r.json()["phone"] == "+1 205 555 0100"
        assert [a["actor"] for a in await _audit(c[Role.admin], "read_camera_contact")] == ["supervisor1"]

        r = await c[Role.supervisor].post(f"/api/v1/cameras/{reg_id}/approve", json={})
        assert r.status_code == 403
        r = await c[Role.admin].post(f"/api/v1/cameras/{reg_id}/approve", json={"reason": "checked"})
        assert r.status_code == 200 and r.json()["status"] == "active"
        assert "approved" in smtp.to(EMAIL)[-1]["Subject"]

        # it can see a point 20 m north of it
        r = await c[Role.officer].get("/api/v1/cameras/visible", params={"lat": 33.51918, "lon": -86.8100})
        assert [i["camera_id"] for i in r.json()["items"]] == [reg_id]

        # footage request → owner mailed → clip uploaded through the mailed link
        # a window after the camera was registered (it has no footage of earlier times)
        w0 = datetime.now(UTC).replace(microsecond=0)
        req = {
            "camera_id": reg_id,
            "incident_ref": "case-2026-0042",
            "window_start": w0.isoformat(),
            "window_end": (w0 + timedelta(seconds=1)).isoformat(),
            "reason": "burglary reported next door",
        }
        r = await c[Role.officer].post("/api/v1/footage-requests", json=req)
        assert r.status_code == 403
        r = await c[Role.analyst].post(
            "/api/v1/footage-requests", json={**req, "window_end": (w0 - timedelta(hours=1)).isoformat()}
        )
        assert r.status_code == 422
        r = await c[Role.analyst].post("/api/v1/footage-requests", json=req)
        assert r.status_code == 201, r.text
        fr = r.json()
        assert fr["status"] == "notified" and fr["requested_by"] == "analyst1"
        mail = smtp.to(EMAIL)[-1]
        assert "burglary reported next door" in Mailbox.body(mail)
        upload = smtp.link_param(EMAIL, "footage")
        r = await anon.get(f"/api/v1/community/footage/{upload}")
        assert r.status_code == 200 and r.json()["status"] == "notified"
        r = await anon.post(
            f"/api/v1/community/footage/{upload}/clip", content=b"x", headers={"content-type": "text/plain"}
        )
        assert r.status_code == 422 and "video/mp4" in r.json()["error"]["message"]
        clip = mp4_clip()  # a real video: uploads are probed for a decodable frame
        r = await anon.post(
            f"/api/v1/community/footage/{upload}/clip", content=clip, headers={"content-type": "video/mp4"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "uploaded"
        # answered once only
        r = await anon.post(f"/api/v1/community/footage/{upload}/decline", json={"note": "changed my mind"})
        assert r.status_code == 409

        r = await c[Role.officer].get("/api/v1/footage-requests", params={"incident_ref": "case-2026-0042"})
        items = r.json()["items"]
        assert len(items) == 1 and items[0]["status"] == "uploaded" and items[0]["clip_bytes"] == len(clip)
        r = await c[Role.officer].get(f"/api/v1/footage-requests/{fr['id']}/clip")
        assert r.status_code == 403
        r = await c[Role.analyst].get(f"/api/v1/footage-requests/{fr['id']}/clip")
        assert r.status_code == 200 and r.content == clip and r.headers["content-type"] == "video/mp4"
        assert [a["actor"] for a in await _audit(c[Role.admin], "read_footage_clip")] == ["analyst1"]
        clip_files = list((center.settings.data_dir / "media" / "footage").rglob("*.mp4"))
        assert len(clip_files) == 1

        # the owner's view
        r = await anon.get(f"/api/v1/community/manage/{manage}")
        assert r.status_code == 200
        mine = r.json()
        assert mine["email"] == EMAIL and mine["status"] == "active"
        assert [q["status"] for q in mine["requests"]] == ["uploaded"]

        stats = (await c[Role.auditor].get("/api/v1/cameras/stats")).json()
        assert stats["cameras"]["community"] == 1 and stats["footage_requests"]["uploaded"] == 1

        # withdrawal deletes the camera, its contact, requests and clips
        r = await anon.delete(f"/api/v1/community/manage/{manage}")
        assert r.status_code == 200 and r.json() == {
            "withdrawn": True,
            "clips_deleted": 1,
            "clips_kept": 0,
            "message": "Your camera, contact details and clips were deleted.",
        }
        assert not any(f.exists() for f in clip_files)
        assert (await anon.get(f"/api/v1/community/manage/{manage}")).status_code == 404
        assert (await c[Role.admin].get(f"/api/v1/cameras/{reg_id}")).status_code == 404
        assert (await c[Role.officer].get("/api/v1/footage-requests")).json()["items"] == []
        stats = (await c[Role.auditor].get("/api/v1/cameras/stats")).json()
        assert stats["cameras"]["community"] == 0 and stats["cameras"]["withdrawn"] == 1
        assert sum(stats["footage_requests"].values()) == 0

        def contact_rows(s: Any) -> int:
            from sqlalchemy import func, select

            from rtcc.store.tables_cameras import CameraRow

            return int(
                s.scalar(select(func.count()).select_from(CameraRow).where(CameraRow.contact_email == EMAIL))
            )

        assert center.center.store is not None
        assert await center.center.store.read(contact_rows) == 0
    finally:
        for cl in c.values():
            await cl.aclose()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_code_verification_and_reject(start_center: StartCenter, smtp: Mailbox) -> None:
    center = await start_center(processors=("recorder",), cameras=smtp_settings(smtp, verify_max_attempts=2))
    anon = center.http
    async with signed_in(center) as admin:
        r = await anon.post("/api/v1/community/registrations", json=registration(email="shop@example.org"))
        reg_id = r.json()["registration_id"]
        import re

        code = re.search(r"enter the code (\d{6})", Mailbox.body(smtp.to("shop@example.org")[-1]))
        assert code is not None
        wrong = "000000" if code.group(1) != "000000" else "111111"
        r = await anon.post("/api/v1/community/verify", json={"registration_id": reg_id, "code": wrong})
        assert r.status_code == 422 and r.json()["error"]["details"] == {"attempts_left": 1}
        r = await anon.post(
            "/api/v1/community/verify", json={"registration_id": reg_id, "code": code.group(1)}
        )
        assert r.status_code == 200 and r.json()["status"] == "pending_approval"
        r = await admin.post(f"/api/v1/cameras/{reg_id}/reject", json={})
        assert r.status_code == 422  # a rejection needs a reason
        r = await admin.post(
            f"/api/v1/cameras/{reg_id}/reject", json={"reason": "camera faces a school yard"}
        )
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert "school yard" in Mailbox.body(smtp.to("shop@example.org")[-1])

        # too many wrong codes: start over
        r = await anon.post("/api/v1/community/registrations", json=registration(email="x@example.org"))
        rid = r.json()["registration_id"]
        for _ in range(2):
            await anon.post("/api/v1/community/verify", json={"registration_id": rid, "code": "999999"})
        right = re.search(r"enter the code (\d{6})", Mailbox.body(smtp.to("x@example.org")[-1]))
        assert right is not None
        r = await anon.post("/api/v1/community/verify", json={"registration_id": rid, "code": right.group(1)})
        assert r.status_code in (409, 200)
        if right.group(1) != "999999":
            assert r.status_code == 409 and "too many" in r.json()["error"]["message"]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_bad_and_flooding_registrations(start_center: StartCenter, smtp: Mailbox) -> None:
    center = await start_center(
        processors=("recorder",),
        cameras=smtp_settings(
            smtp, register_per_ip_per_hour=7, register_per_contact=2, service_area=(33.4, -86.9, 33.6, -86.7)
        ),
    )
    anon = center.http
    r = await anon.post("/api/v1/community/registrations", json=registration(lat=0.0, lon=0.0))
    assert r.status_code == 422 and "0,0" in r.json()["error"]["message"]
    r = await anon.post("/api/v1/community/registrations", json=registration(lat=40.7, lon=-74.0))
    assert r.status_code == 422 and "service area" in r.json()["error"]["message"]
    r = await anon.post("/api/v1/community/registrations", json=registration(lat=91.0))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
    r = await anon.post("/api/v1/community/registrations", json=registration(level="integrated"))
    assert r.status_code == 422 and "stream_url" in r.json()["error"]["message"]
    r = await anon.post("/api/v1/community/registrations", json=registration(range_m=5000.0))
    assert r.status_code == 422 and "cameras.max_range_m" in r.json()["error"]["message"]
    assert smtp.messages == []  # nothing refused was mailed
    # per contact: two open registrations, the third is refused
    for _ in range(2):
        assert (await anon.post("/api/v1/community/registrations", json=registration())).status_code == 201
    r = await anon.post("/api/v1/community/registrations", json=registration(email=EMAIL.upper()))
    assert r.status_code == 429 and r.json()["error"]["details"]["reason"] == "per_contact"
    # per client IP: 7 accepted registrations an hour (the refused requests above do not count)
    for i in range(5):
        r = await anon.post("/api/v1/community/registrations", json=registration(email=f"n{i}@example.org"))
        assert r.status_code == 201, r.text
    r = await anon.post("/api/v1/community/registrations", json=registration(email="other@example.org"))
    assert r.status_code == 429 and r.json()["error"]["details"]["reason"] == "per_ip"
    assert "register_per_ip_per_hour" in r.json()["error"]["message"]
    assert len(smtp.messages) == 7


@pytest.mark.parametrize("backend", ["embedded"])
async def test_mail_server_down_keeps_nothing(start_center: StartCenter, smtp: Mailbox) -> None:
    from tests.cameras.conftest import free_port

    center = await start_center(
        processors=("recorder",), cameras={"notifier": "smtp", "smtp_port": free_port()}
    )
    async with signed_in(center) as admin:
        r = await center.http.post("/api/v1/community/registrations", json=registration())
        assert r.status_code == 503 and "could not send the e-mail" in r.json()["error"]["message"]
        items = (await admin.get("/api/v1/cameras")).json()["items"]
        assert items == []


@pytest.mark.parametrize("backend", ["embedded"])
async def test_unanswered_request_expires_and_log_notifier(start_center: StartCenter) -> None:
    from rtcc.cameras.notify import LogNotifier
    from rtcc.cameras.service import service_of

    center = await start_center(
        processors=("recorder", "cameras"), cameras={"notifier": "log", "footage_request_ttl_h": 0.0003}
    )
    async with signed_in(center) as admin:
        notifier = service_of(center.center.services, center.settings.cameras).notifier
        assert isinstance(notifier, LogNotifier)
        anon = center.http
        r = await anon.post("/api/v1/community/registrations", json=registration(level="registered"))
        assert r.status_code == 201
        import re

        token = re.search(r"verify=([A-Za-z0-9_\-]+)", notifier.sent[-1].body)
        assert token is not None and notifier.sent[-1].to_email == EMAIL
        reg = (await anon.post("/api/v1/community/verify", json={"token": token.group(1)})).json()
        await admin.post(f"/api/v1/cameras/{reg['registration_id']}/approve", json={})
        body = footage_request(  # a window after the camera was registered
            reg["registration_id"], incident_ref="gunshot-1", reason="shots fired on the corner"
        )
        r = await admin.post("/api/v1/footage-requests", json=body)
        assert r.status_code == 201 and r.json()["status"] == "notified"
        upload = re.search(r"footage=([A-Za-z0-9_\-]+)", notifier.sent[-1].body)
        assert upload is not None

        async def expired() -> bool:
            items = (await admin.get("/api/v1/footage-requests")).json()["items"]
            return bool(items[0]["status"] == "expired")

        await eventually(expired, what="the request to expire (ttl ~1 s)")
        r = await anon.post(
            f"/api/v1/community/footage/{upload.group(1)}/clip",
            content=b"abc",
            headers={"content-type": "video/mp4"},
        )
        assert r.status_code == 409 and "expired" in r.json()["error"]["message"]
        # footage is requested from community cameras only
        city = await admin.post(
            "/api/v1/cameras", json={"kind": "city", "name": "c", "lat": 33.5, "lon": -86.8}
        )
        r = await admin.post("/api/v1/footage-requests", json={**body, "camera_id": city.json()["id"]})
        assert r.status_code == 409
