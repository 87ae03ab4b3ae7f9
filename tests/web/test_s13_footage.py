"""Footage requests in the dashboard, in a real browser against a real center.

An analyst asks a community camera's owner for a clip from the incident packet (the window
prefilled around the incident's time) or from the camera registry; the center's refusals show in
the form; the requests list follows the owner's answer (delivered: the clip plays through the
audited clip endpoint; declined); an officer, whom the center refuses, sees no request action.

The owner's side goes through the public API with the token of the mailed link (the demo notifier
keeps the messages). Chromium comes from ``RTCC_TEST_CHROMIUM``; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import av
import httpx
import numpy as np
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from rtcc.acoustic.projection import Projection
from rtcc.cameras.service import SERVICE_KEY
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import ORIGIN
from tests.conftest import Running, StartCenter
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import (
    PHONE,
    WAIT_MS,
    js_errors,
    new_page,
    no_horizontal_scroll,
    open_dashboard,
    screenshot_path,
)
from tests.web.test_operations import SHOT_XY, gunshot_alert, open_tab

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

ZONE = "America/Chicago"
"""The browser's time zone: the window is shown and typed in local time, sent in UTC."""
LOCAL = "%Y-%m-%dT%H:%M:%S"
"""A ``datetime-local`` input's value, to the second."""


def webm_clip() -> bytes:
    """A real one-second VP8 clip (10 frames) the browser can play."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            img = np.full((48, 64, 3), i * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def mail_to(running: Running, email: str, pattern: str) -> str:
    """The first group of ``pattern`` in the newest message kept for ``email``."""
    for m in reversed(running.center.services[SERVICE_KEY].notifier.sent):
        if m.to_email == email and (found := re.search(pattern, m.body)):
            return found.group(1)
    raise AssertionError(f"no message to {email} matching {pattern}")


async def community_camera(
    running: Running,
    admin: httpx.AsyncClient | None,
    name: str,
    email: str,
    lat: float,
    lon: float,
) -> tuple[str, str]:
    """A resident's camera, registered on the public API and verified with the emailed code, then
    approved by ``admin`` (left waiting for approval without one); its id and the manage token."""
    body: dict[str, Any] = {
        "name": name,
        "owner_type": "resident",
        "owner_name": "Pat Resident",
        "email": email,
        "lat": lat,
        "lon": lon,
        "bearing_deg": 0.0,
        "fov_deg": 360.0,
        "range_m": 80.0,
        "level": "registered",
    }
    r = await running.http.post("/api/v1/community/registrations", json=body)
    assert r.status_code == 201, r.text
    reg_id = str(r.json()["registration_id"])
    code = mail_to(running, email, r"the code (\d{6})")
    r = await running.http.post("/api/v1/community/verify", json={"registration_id": reg_id, "code": code})
    assert r.status_code == 200, r.text
    manage = str(r.json()["manage_token"])
    if admin is not None:
        r = await admin.post(f"/api/v1/cameras/{reg_id}/approve", json={"reason": "checked the view"})
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
    return reg_id, manage


def owner_link(running: Running, email: str) -> str:
    """The token of the footage link mailed to the owner last."""
    return mail_to(running, email, r"[?&]footage=([A-Za-z0-9_\-]+)")


def local_value(when: datetime) -> str:
    """``when`` as the browser's ``datetime-local`` value in its zone (the browser drops ``:00`` seconds)."""
    text = when.astimezone(ZoneInfo(ZONE)).strftime(LOCAL)
    return text[:-3] if text.endswith(":00") else text


def utc(text: str) -> datetime:
    """A timestamp from the API, in UTC (a naive one is UTC)."""
    t = datetime.fromisoformat(text)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


async def open_packet(page: Page, alert_id: str) -> Locator:
    await open_tab(page, "alerts")
    await page.locator(f'li.alert-row[data-alert-id="{alert_id}"] [data-action="open"]').click()
    view = page.locator("#packet-view")
    await expect(view.locator(".packet-sections")).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    return view


async def clip_duration(clip: Locator) -> float:
    """Load the video's metadata; its duration (fails when the source does not load or play)."""
    d = await clip.evaluate(
        """(v) => new Promise((ok, fail) => {
            if (v.readyState >= 1) return ok(v.duration);
            v.addEventListener('loadedmetadata', () => ok(v.duration), {once: true});
            const failed = () => fail(new Error('clip failed: ' + (v.error && v.error.code)));
            v.addEventListener('error', failed, {once: true});
        })"""
    )
    return float(d)


# --- 1. from the incident packet, to a delivered clip ----------------------------------------------


async def test_footage_from_the_packet_then_the_delivered_clip_plays(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    running.add_user("officer1", Role.officer)
    owner = "corner.store@example.org"
    admin = await running.login("admin")
    async with admin:
        # a resident's camera 20 m from where the shot will be located
        lat, lon = Projection(*ORIGIN).to_latlon(*SHOT_XY)
        cam, _ = await community_camera(running, admin, "Corner store", owner, lat + 0.00018, lon)
        # the shot is 5 s in the past when reported: a camera registered later would not see it
        created = utc((await admin.get(f"/api/v1/cameras/{cam}")).json()["created_at"])
        while datetime.now(UTC) - created < timedelta(seconds=6):
            await asyncio.sleep(0.2)
        alert = await gunshot_alert(running, admin)
        iid = alert["ref_id"]
        r = await admin.get(f"/api/v1/packets/gunshot/{iid}")
        assert r.status_code == 200, r.text
        assert cam in [c["camera_id"] for c in r.json()["cameras"]["items"]]
        at = utc(r.json()["at"])

        page = await new_page(browser, timezone_id=ZONE)
        posts: list[str] = []
        page.on(
            "request",
            lambda q: posts.append(q.url) if q.method == "POST" and "footage-requests" in q.url else None,
        )
        await open_dashboard(page, running, "analyst1")
        view = await open_packet(page, alert["id"])
        row = view.locator(f'[data-section="cameras"] li[data-camera-id="{cam}"]')
        await expect(row).to_contain_text("Corner store")
        await row.locator(f'[data-action="request-footage"][data-camera-id="{cam}"]').click()
        form = row.locator("form.footage-form")
        start, end = form.locator('[name="window_start"]'), form.locator('[name="window_end"]')
        # the window: 5 min before to 5 min after the incident, in the browser's local time
        await expect(start).to_have_value(local_value(at - timedelta(minutes=5)))
        await expect(end).to_have_value(local_value(at + timedelta(minutes=5)))
        await expect(form.locator('[name="incident_ref"]')).to_have_value(f"gunshot:{iid}")

        # refused in the page without a purpose: nothing is sent
        await form.locator('button[type="submit"]').click()
        await expect(form).to_have_attribute("data-refused", "client")
        await expect(form.locator(".msg")).to_contain_text("needs a purpose")
        assert posts == []
        # a window the center refuses: its message, in the form
        await form.locator('[name="reason"]').fill("Shots fired on this block: the street at the time")
        await end.fill(local_value(at - timedelta(minutes=10)))
        await form.locator('button[type="submit"]').click()
        await expect(form).to_have_attribute("data-refused", "server")
        await expect(form.locator(".msg")).to_contain_text("window_end must be after window_start")
        assert len(posts) == 1

        # the window back: the request goes out; the row says it waits for the owner
        await end.fill(local_value(at + timedelta(minutes=5)))
        await form.locator('button[type="submit"]').click()
        sent = row.locator(".footage-sent")
        await expect(sent).to_contain_text("waiting for the owner's answer")
        await expect(row.locator('.footage-status [data-status="notified"]')).to_have_text("waiting")
        await expect(form).to_have_count(0)
        r = await admin.get("/api/v1/footage-requests")
        (req,) = r.json()["items"]
        assert req["camera_id"] == cam and req["requested_by"] == "analyst1"
        assert req["incident_ref"] == f"gunshot:{iid}"
        assert req["reason"] == "Shots fired on this block: the street at the time"
        assert utc(req["window_start"]) == (at - timedelta(minutes=5)).replace(microsecond=0)
        assert utc(req["window_end"]) == (at + timedelta(minutes=5)).replace(microsecond=0)

        # the list, from the confirmation: newest first, waiting
        await sent.locator('[data-action="show-footage-requests"]').click()
        await expect(page.locator("#tab-cameras")).to_be_visible()
        item = page.locator(f'#footage-requests li[data-request-id="{req["id"]}"]')
        await expect(item).to_have_attribute("data-status", "notified")
        await expect(item.locator(".status-tag")).to_have_text("waiting")
        await expect(item).to_contain_text("Corner store")
        await expect(item).to_contain_text(f"case gunshot:{iid}")
        await expect(item).to_contain_text("Shots fired on this block")
        await expect(page.locator("#camera-view-footage")).to_have_text("Footage requests (1 waiting)")
        await expect(item.locator(".footage-clip")).to_have_count(0)

        # the owner sends a clip from the mailed link: the list shows it delivered live (the center
        # publishes footage_request_updated; no Refresh), and it plays
        clip = webm_clip()
        token = owner_link(running, owner)
        r = await running.http.post(
            f"/api/v1/community/footage/{token}/clip", content=clip, headers={"content-type": "video/webm"}
        )
        assert r.status_code == 200, r.text
        await expect(item).to_have_attribute("data-status", "uploaded")
        await expect(item.locator(".status-tag")).to_have_text("delivered")
        await expect(page.locator("#camera-view-footage")).to_have_text("Footage requests")
        # the packet, still open beside the list, follows too
        await expect(row.locator('.footage-status [data-status="uploaded"]')).to_have_text("delivered")
        await item.locator('[data-action="view-clip"]').click()
        video = item.locator("video.footage-clip")
        assert 0.5 < await clip_duration(video) < 2.0
        src = await video.evaluate("(v) => v.currentSrc")
        got = await page.request.get(src)
        assert got.status == 200 and got.headers["content-type"] == "video/webm"
        assert await got.body() == clip
        href = await item.locator("a.footage-download").evaluate("(a) => a.href")
        assert href == src
        await page.screenshot(path=str(screenshot_path("footage-delivered.png")))
        # the analyst's reads of the clip are audited by the center (one entry per viewing window)
        r = await admin.get("/api/v1/audit", params={"action": "read_footage_clip"})
        actors = {a["actor"] for a in r.json()["items"]}
        assert actors == {"analyst1"}
        assert [e for e in js_errors(page) if "status of 422" not in e] == []

        # an officer sees the camera in the packet, but no request action (the center refuses it)
        officer = await new_page(browser)
        await open_dashboard(officer, running, "officer1")
        oview = await open_packet(officer, alert["id"])
        await expect(oview.locator(f'[data-section="cameras"] li[data-camera-id="{cam}"]')).to_be_visible()
        await expect(oview.locator('[data-action="request-footage"]')).to_have_count(0)
        await expect(officer.locator("#tab-btn-cameras")).to_be_hidden()
        assert js_errors(officer) == []


# --- 2. from the camera registry: refusals, a declined request ----------------------------------


async def test_footage_from_the_registry_refused_then_declined(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("supervisor1", Role.supervisor)
    yard, garage, waits = "back.yard@example.org", "garage@example.org", "not.yet@example.org"
    admin = await running.login("admin")
    async with admin:
        cam, _ = await community_camera(running, admin, "Back yard", yard, ORIGIN[0] + 0.001, ORIGIN[1])
        gone, gone_manage = await community_camera(
            running, admin, "Garage", garage, ORIGIN[0] + 0.002, ORIGIN[1]
        )
        pending, _ = await community_camera(running, None, "Not yet", waits, ORIGIN[0] + 0.003, ORIGIN[1])
        r = await admin.post(
            "/api/v1/cameras",
            json={"kind": "city", "name": "City cam 1", "lat": ORIGIN[0], "lon": ORIGIN[1] + 0.001},
        )
        assert r.status_code == 201, r.text
        city_cam = r.json()["id"]

        page = await new_page(browser, timezone_id=ZONE)
        await open_dashboard(page, running, "supervisor1")
        await open_tab(page, "cameras")
        rows = page.locator("#camera-list")
        row = rows.locator(f'li[data-camera-id="{cam}"]')
        # only an active community camera has the action: not a city camera, not one waiting for approval
        await expect(row.locator('[data-action="request-footage"]')).to_be_visible()
        for other in (city_cam, pending):
            await expect(rows.locator(f'li[data-camera-id="{other}"]')).to_be_visible()
            await expect(
                rows.locator(f'li[data-camera-id="{other}"] [data-action="request-footage"]')
            ).to_have_count(0)

        await row.locator('[data-action="request-footage"]').click()
        form = row.locator("form.footage-form")
        await expect(form.locator('[name="incident_ref"]')).to_have_value("")
        await form.locator('[name="reason"]').fill("Burglary next door: the driveway")
        # without a case number: refused in the page
        await form.locator('button[type="submit"]').click()
        await expect(form).to_have_attribute("data-refused", "client")
        await expect(form.locator(".msg")).to_contain_text("a case or incident number")
        await form.locator('[name="incident_ref"]').fill("2026-001234")
        # a window from before the camera was registered: the center's message
        now = datetime.now(UTC)
        await form.locator('[name="window_start"]').fill(local_value(now - timedelta(days=1, minutes=10)))
        await form.locator('[name="window_end"]').fill(local_value(now - timedelta(days=1)))
        await form.locator('button[type="submit"]').click()
        await expect(form).to_have_attribute("data-refused", "server")
        await expect(form.locator(".msg")).to_contain_text("after the window asked for")
        # the last 10 minutes: accepted
        await form.locator('[name="window_start"]').fill(local_value(now - timedelta(minutes=10)))
        await form.locator('[name="window_end"]').fill(local_value(now))
        await form.locator('button[type="submit"]').click()
        await expect(row.locator(".footage-sent")).to_contain_text("Footage requested from Back yard")

        # a camera withdrawn by its owner while the form is open: the center's 404, in the form
        grow = rows.locator(f'li[data-camera-id="{gone}"]')
        await grow.locator('[data-action="request-footage"]').click()
        gform = grow.locator("form.footage-form")
        await gform.locator('[name="incident_ref"]').fill("2026-001234")
        await gform.locator('[name="reason"]').fill("Burglary next door: the street")
        r = await running.http.delete(f"/api/v1/community/manage/{gone_manage}")
        assert r.status_code == 200, r.text
        await gform.locator('button[type="submit"]').click()
        await expect(gform).to_have_attribute("data-refused", "error")
        await expect(gform.locator(".msg")).to_contain_text(f"no camera {gone}")

        # the list: re-read as it opens, the request waiting
        await page.click("#camera-view-footage")
        (req,) = (await admin.get("/api/v1/footage-requests")).json()["items"]
        item = page.locator(f'#footage-requests li[data-request-id="{req["id"]}"]')
        await expect(item).to_have_attribute("data-status", "notified")
        await expect(item).to_contain_text("case 2026-001234")
        await expect(item).to_contain_text("by supervisor1")

        # the owner declines from the mailed link: Refresh shows it declined, with the owner's note
        token = owner_link(running, yard)
        r = await running.http.post(
            f"/api/v1/community/footage/{token}/decline", json={"note": "the camera was off that day"}
        )
        assert r.status_code == 200, r.text
        await page.click("#footage-refresh")
        await expect(item).to_have_attribute("data-status", "declined")
        await expect(item.locator(".status-tag")).to_have_text("declined")
        await expect(item).to_contain_text("Owner's note: the camera was off that day")
        await expect(item.locator('[data-action="view-clip"]')).to_have_count(0)
        # the filter
        await page.select_option("#footage-filter", "waiting")
        await expect(item).to_have_count(0)
        await page.select_option("#footage-filter", "declined")
        await expect(item).to_be_visible()
        assert [e for e in js_errors(page) if "status of 422" not in e and "status of 404" not in e] == []

        # on a phone: the list fits the screen
        phone = await new_page(browser, PHONE)
        await open_dashboard(phone, running, "supervisor1")
        await open_tab(phone, "cameras")
        await phone.click("#camera-view-footage")
        await expect(phone.locator(f'#footage-requests li[data-request-id="{req["id"]}"]')).to_be_visible()
        assert await no_horizontal_scroll(phone)
        await phone.screenshot(path=str(screenshot_path("footage-phone.png")), full_page=True)
        # the form too
        await phone.click("#camera-view-registry")
        await phone.locator(
            f'#camera-list li[data-camera-id="{cam}"] [data-action="request-footage"]'
        ).click()
        await expect(phone.locator("form.footage-form")).to_be_visible()
        assert await no_horizontal_scroll(phone)
        assert js_errors(phone) == []
