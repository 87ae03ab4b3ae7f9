"""The dashboard in a real browser against a real center with the simulated city.

Chromium comes from ``RTCC_TEST_CHROMIUM`` (default ``/usr/bin/chromium``);
without it these tests are skipped, unless ``RTCC_REQUIRE_SERVICES=1``.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect

from rtcc.events import Alert, DeviceHeartbeat, GunshotIncident, Position, subject_for
from rtcc.roles import Role
from tests.conftest import PASSWORD, Running
from tests.helpers import eventually

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000
MARKER = ".leaflet-marker-icon[data-device-id]"
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Camera 42'


async def new_page(browser: Browser, viewport: dict[str, int] = DESKTOP, **kw: Any) -> Page:
    context = await browser.new_context(viewport=viewport, **kw)
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # console errors, except the 401s the page expects (/auth/me before signing in, a wrong password)
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None,
    )
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def js_errors(page: Page) -> list[str]:
    return list(page.js_errors)  # type: ignore[attr-defined]


async def sign_in(page: Page, username: str = "admin", password: str = PASSWORD) -> None:
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")


async def open_dashboard(page: Page, running: Running, username: str = "admin") -> None:
    await page.goto(running.url)
    await expect(page.locator("#login-form")).to_be_visible()
    await sign_in(page, username)
    await expect(page.locator("#app-view")).to_be_visible()
    await expect(page.locator("#ws-status")).to_have_text("live", timeout=WAIT_MS)


async def device_types(running: Running) -> Counter[str]:
    admin = await running.login("admin")
    async with admin:
        r = await admin.get("/api/v1/devices")
    assert r.status_code == 200, r.text
    return Counter(d["type"] for d in r.json()["items"])


async def wait_all_online(page: Page, expected: int) -> None:
    await page.wait_for_function(
        """(n) => {
            const m = [...document.querySelectorAll('.leaflet-marker-icon[data-device-id]')];
            return m.length >= n && m.every((e) => e.dataset.status === 'online');
        }""",
        arg=expected,
        timeout=WAIT_MS,
    )


async def no_horizontal_scroll(page: Page) -> bool:
    return bool(
        await page.evaluate(
            """() => document.documentElement.scrollWidth <= document.documentElement.clientWidth
                    && document.body.scrollWidth <= document.body.clientWidth"""
        )
    )


async def add_camera(running: Running, device_id: str, name: str = "") -> None:
    """Register a city camera as an admin would, and send one heartbeat as the camera would."""
    pos = Position(lat=running.settings.sim.center_lat, lon=running.settings.sim.center_lon + 0.002)
    admin = await running.login("admin")
    async with admin:
        r = await admin.post(
            "/api/v1/devices",
            json={
                "id": device_id,
                "type": "camera",
                "name": name or f"Camera {device_id}",
                "lat": pos.lat,
                "lon": pos.lon,
            },
        )
    assert r.status_code == 201, r.text
    hb = DeviceHeartbeat(source=device_id, device=device_id, device_type="camera", pos=pos)
    async with httpx.AsyncClient(base_url=running.url, timeout=20) as device:
        r = await device.post(
            "/api/v1/ingest/events",
            headers={"authorization": f"Device {r.json()['key']}"},
            json={"events": [hb.model_dump(mode="json")]},
        )
    assert r.status_code < 300, r.text


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


# --- the live dashboard ---------------------------------------------------------


async def test_map_devices_and_live_feed(browser: Browser, city: Running) -> None:
    expected = await device_types(city)
    assert expected["acoustic_sensor"] and expected["plate_camera"] and expected["bodycam"] == 3
    page = await new_page(browser)
    await open_dashboard(page, city)

    # a marker for every device, with its id and type as DOM hooks
    for dtype, n in expected.items():
        sel = f'{MARKER}[data-device-type="{dtype}"]'
        await expect(page.locator(sel)).to_have_count(n, timeout=WAIT_MS)
    assert await page.locator(f'{MARKER}[data-device-id^="ac-"]').count() == expected["acoustic_sensor"]
    assert await page.locator(f'{MARKER}[data-device-id^="bwc-"]').count() == 3
    assert await page.locator(f'{MARKER}[data-device-id^="lpr-"]').count() == expected["plate_camera"]

    # heartbeats arrive through the real ingest path: every device shows online
    await wait_all_online(page, sum(expected.values()))
    for dtype, n in expected.items():
        counter = page.locator(f"#count-{dtype}")
        await expect(counter).to_have_attribute("data-online", str(n))
        await expect(counter).to_have_attribute("data-total", str(n))
        await expect(counter.locator(".value")).to_have_text(f"{n}/{n}")

    # the feed fills with heartbeats pushed over the WebSocket, newest first
    live_hb = page.locator('#feed li[data-event-type="device_heartbeat"][data-origin="live"]')
    await expect(live_hb.nth(2 * sum(expected.values()))).to_be_attached(timeout=WAIT_MS)  # 2+ ticks
    times = await page.locator("#feed li time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))"
    )
    assert times[0] > times[-1]  # newest first
    await expect(page.locator("#ws-status")).to_have_text("live")
    await expect(page.locator("#ws-status")).to_have_attribute("data-state", "live")

    # body-cam units move as their heartbeats come in
    unit = page.locator(f'{MARKER}[data-device-id="bwc-01"]')
    before = await unit.evaluate("e => e.style.transform")
    await page.wait_for_function(
        "([sel, t]) => { const e = document.querySelector(sel); return e && e.style.transform !== t; }",
        arg=[f'{MARKER}[data-device-id="bwc-01"]', before],
        timeout=WAIT_MS,
    )

    # roads and the area are drawn without tiles, with a scale bar
    await expect(page.locator(".leaflet-tile")).to_have_count(0)
    assert await page.locator(".leaflet-overlay-pane path, .leaflet-pane path").count() >= 5
    await expect(page.locator(".leaflet-control-scale-line").first).to_be_visible()

    # layer toggles hide and show a device type
    await page.uncheck("#layer-acoustic_sensor")
    await expect(page.locator(f'{MARKER}[data-device-type="acoustic_sensor"]')).to_have_count(0)
    await page.check("#layer-acoustic_sensor")
    await expect(page.locator(f'{MARKER}[data-device-type="acoustic_sensor"]')).to_have_count(
        expected["acoustic_sensor"]
    )
    await page.check("#layer-coverage")
    await expect(page.locator(".leaflet-coverage-pane path")).to_have_count(expected["acoustic_sensor"])
    await page.uncheck("#layer-coverage")

    # the feed holds still while the mouse is over it, and catches up when it leaves
    await page.hover("#feed li:nth-child(3)")
    await expect(page.locator("#feed-paused")).to_be_visible()
    first = await page.locator("#feed li").first.get_attribute("data-event-id")
    await page.hover("#map")
    await expect(page.locator("#feed-paused")).to_be_hidden()
    await expect(page.locator("#feed li").first).not_to_have_attribute("data-event-id", first or "")

    # clicking a marker opens its details
    await page.locator(f'{MARKER}[data-device-id="ac-0001"]').click()
    await expect(page.locator('.popup-device[data-device-id="ac-0001"]')).to_contain_text("online")
    await page.wait_for_function("getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
    await page.screenshot(path=str(screenshot_path("dashboard-desktop-feed.png")))
    assert js_errors(page) == []


async def test_live_connection_reconnects(browser: Browser, city: Running) -> None:
    page = await new_page(browser)
    sockets: list[WebSocketRoute] = []

    def proxy(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    await page.route_web_socket(re.compile(r".*/api/v1/ws$"), proxy)
    await open_dashboard(page, city)
    status = page.locator("#ws-status")
    await sockets[-1].close(code=1011, reason="network trouble")
    await expect(status).to_have_text("reconnecting")
    await expect(status).to_have_attribute("data-state", "reconnecting")
    await expect(status).to_have_text("live", timeout=WAIT_MS)
    assert len(sockets) == 2
    # events flow again on the new connection
    rows = page.locator('#feed li[data-event-type="device_heartbeat"]')
    n = await rows.count()
    await expect(rows.nth(n + 3)).to_be_attached()
    assert js_errors(page) == []


async def test_auditor_sees_the_map_without_devices(browser: Browser, city: Running) -> None:
    city.add_user("auditor1", Role.auditor)
    page = await new_page(browser)
    await open_dashboard(page, city, "auditor1")
    await expect(page.locator("#notice")).to_contain_text("Devices unavailable")
    await expect(page.locator(MARKER)).to_have_count(0)
    await expect(page.locator(".leaflet-overlay-pane path, .leaflet-base-pane path").first).to_be_attached()
    assert [e for e in js_errors(page) if "status of 403" not in e] == []  # /devices, /events: forbidden


async def test_incidents_and_alerts_appear_live(browser: Browser, city: Running) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    expected = await device_types(city)
    await wait_all_online(page, sum(expected.values()))
    center = city.settings.sim
    assert city.center.bus is not None
    incident = GunshotIncident(
        source="acoustic",
        pos=Position(lat=center.center_lat + 0.0012, lon=center.center_lon - 0.0015),
        ellipse_major_m=60.0,
        ellipse_minor_m=25.0,
        ellipse_angle_deg=30.0,
        rounds=4,
        label="probable gunfire",
        confidence=0.92,
        sensors=["ac-0001", "ac-0002", "ac-0003"],
    )
    alert = Alert(
        source="ops",
        kind="gunshot",
        severity="critical",
        title="4 rounds near 2nd Ave N",
        pos=Position(lat=center.center_lat - 0.001, lon=center.center_lon + 0.0012),
    )
    await city.center.bus.publish(subject_for("gunshot_incident"), incident.to_json())
    await city.center.bus.publish(subject_for("alert"), alert.to_json())

    marker = page.locator(f'.leaflet-marker-icon[data-incident-id="{incident.incident_id}"]')
    await expect(marker).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("path.incident-ellipse")).to_have_count(1)
    await expect(page.locator(f'.leaflet-marker-icon[data-alert-id="{alert.alert_id}"]')).to_be_visible()
    row = page.locator('#feed li[data-event-type="gunshot_incident"]', has_text="4 rounds")
    await expect(row).to_have_count(1)
    alert_row = page.locator('#feed li[data-event-type="alert"]', has_text="4 rounds near 2nd Ave N")
    await expect(alert_row).to_have_count(1)

    # the feed filter narrows the list to incidents and alerts
    await page.select_option("#feed-filter", "incident")
    await expect(page.locator('#feed li[data-event-type="device_heartbeat"]').first).to_be_hidden()
    await expect(row).to_be_visible()

    await page.screenshot(path=str(screenshot_path("dashboard-desktop.png")))

    # a feed row takes the map to the incident
    await row.click()
    await expect(page.locator(".popup-incident")).to_contain_text("probable gunfire")
    await page.select_option("#feed-filter", "all")
    assert js_errors(page) == []


async def test_recent_incidents_load_with_the_page(browser: Browser, city: Running) -> None:
    center = city.settings.sim
    incident = GunshotIncident(
        source="acoustic",
        pos=Position(lat=center.center_lat, lon=center.center_lon),
        ellipse_major_m=30.0,
        ellipse_minor_m=30.0,
        rounds=1,
        label="possible gunfire",
        confidence=0.6,
        sensors=["ac-0001", "ac-0002"],
    )
    assert city.center.bus is not None
    await city.center.bus.publish(subject_for("gunshot_incident"), incident.to_json())
    admin = await city.login("admin")
    async with admin:
        await eventually(lambda: _has_events(admin, "gunshot_incident"), what="the incident to be recorded")
    page = await new_page(browser)
    await open_dashboard(page, city)
    await expect(page.locator(f'[data-incident-id="{incident.incident_id}"]')).to_be_visible()
    row = page.locator('#feed li[data-event-type="gunshot_incident"]', has_text="1 round,")
    await expect(row).to_have_attribute("data-origin", "history")
    assert js_errors(page) == []


async def _has_events(client: httpx.AsyncClient, event_type: str) -> bool:
    r = await client.get("/api/v1/events", params={"types": event_type})
    return r.status_code == 200 and bool(r.json()["items"])


async def test_a_new_camera_comes_online_then_goes_offline(browser: Browser, city: Running) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    await expect(page.locator("#count-camera")).to_have_attribute("data-total", "0")
    await add_camera(city, "cam-0042", name=HOSTILE_NAME)

    cam = page.locator(f'{MARKER}[data-device-id="cam-0042"]')
    await expect(cam).to_have_attribute("data-device-type", "camera", timeout=WAIT_MS)
    await expect(cam).to_have_attribute("data-status", "online", timeout=WAIT_MS)
    await expect(page.locator("#count-camera .value")).to_have_text("1/1")
    # names are shown as text, never interpreted as HTML
    await page.wait_for_function(
        "() => document.querySelector('[data-device-id=\"cam-0042\"]').getAttribute('aria-label')"
        ".startsWith('<img')"
    )
    await cam.click()
    await expect(page.locator(".popup-device .popup-title")).to_have_text(HOSTILE_NAME)
    assert await page.evaluate("() => window.__pwned === undefined")
    # no more heartbeats: the center's health monitor marks it offline, pushed live
    await expect(cam).to_have_attribute("data-status", "offline", timeout=45_000)
    await expect(page.locator("#count-camera .value")).to_have_text("0/1")
    await expect(page.locator('#feed li[data-event-type="device_status"]').first).to_contain_text(
        "cam-0042 is offline"
    )
    assert js_errors(page) == []


# --- sign-in ---------------------------------------------------------------------


async def test_wrong_password_shows_the_servers_message(browser: Browser, city: Running) -> None:
    r = await city.http.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong-password-1"})
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    page = await new_page(browser)
    await page.goto(city.url)
    await sign_in(page, "admin", "wrong-password-2")
    await expect(page.locator("#login-error")).to_have_text(message)
    await page.screenshot(path=str(screenshot_path("login-error.png")))
    await expect(page.locator("#app-view")).to_be_hidden()
    await expect(page.locator("#login-totp-row")).to_be_hidden()


async def test_lockout_is_explained(browser: Browser, city: Running) -> None:
    city.add_user("analyst7", Role.analyst)
    page = await new_page(browser)
    await page.goto(city.url)
    for _ in range(city.settings.security.lockout_attempts):
        await sign_in(page, "analyst7", "not-the-password")
        await expect(page.locator("#login-error")).to_be_visible()
        await expect(page.locator("#login-submit")).to_be_enabled()
    await sign_in(page, "analyst7", PASSWORD)
    await expect(page.locator("#login-error")).to_have_attribute("data-kind", "locked")
    await expect(page.locator("#login-error")).to_contain_text("until")


async def test_mfa_code_field_appears_when_needed(browser: Browser, city: Running) -> None:
    city.add_user("super1", Role.supervisor)
    sup = await city.login("super1")
    async with sup:
        secret = (await sup.post("/api/v1/auth/mfa/enrol")).json()["secret"]
        r = await sup.post("/api/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()})
        assert r.status_code == 200, r.text
    page = await new_page(browser)
    await page.goto(city.url)
    await sign_in(page, "super1")
    await expect(page.locator("#login-totp")).to_be_visible()
    await expect(page.locator("#login-error")).to_have_attribute("data-kind", "mfa")
    await page.fill("#login-password", PASSWORD)
    await page.fill("#login-totp", pyotp.TOTP(secret).now())
    await page.click("#login-submit")
    await expect(page.locator("#ws-status")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator("#user-role")).to_have_text("supervisor")


async def test_mfa_enrolment_when_required(browser: Browser, city: Running) -> None:
    admin = await city.login("admin")
    async with admin:
        r = await admin.put("/api/v1/auth/mfa/required", json={"required": True})
        assert r.status_code == 200, r.text
    city.add_user("officer9", Role.officer)
    page = await new_page(browser)
    await page.goto(city.url)
    await sign_in(page, "officer9")
    await expect(page.locator("#enrol-panel")).to_be_visible()
    await expect(page.locator("#enrol-qr img")).to_be_visible()
    await expect(page.locator("#enrol-uri")).to_contain_text("otpauth://")
    await page.screenshot(path=str(screenshot_path("mfa-enrolment.png")))
    secret = (await page.locator("#enrol-secret").inner_text()).replace(" ", "")
    await page.fill("#enrol-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    await page.click("#enrol-submit")
    await expect(page.locator("#enrol-error")).to_be_visible()
    await page.fill("#enrol-code", pyotp.TOTP(secret).now())
    await page.click("#enrol-submit")
    await expect(page.locator("#ws-status")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator("#user-role")).to_have_text("officer")


async def test_sign_out_and_session_end_return_to_login(browser: Browser, city: Running) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    await page.click("#logout")
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("#app-view")).to_be_hidden()
    await page.reload()
    await expect(page.locator("#login-form")).to_be_visible()  # the cookie is gone

    # the session ends on the server: the next API call answers 401 and the page returns
    # to the login (here the call is the device-list refresh a newly seen device triggers)
    await sign_in(page)
    await expect(page.locator("#ws-status")).to_have_text("live", timeout=WAIT_MS)
    # the new dashboard works as the first did: a feed row takes the map to its device
    row = page.locator('#feed li[data-event-type="device_heartbeat"][data-origin="live"]').first
    await expect(row).to_be_attached(timeout=WAIT_MS)
    await page.hover("#feed")  # the feed holds still under the pointer
    await expect(page.locator("#feed-paused")).to_be_visible()
    device_id = (await row.locator(".ev-text").inner_text()).split(" ")[0]
    await row.click()
    await expect(page.locator(f'.popup-device[data-device-id="{device_id}"]')).to_be_visible()
    assert js_errors(page) == []
    cookie = next(c for c in await page.context.cookies() if c["name"] == "rtcc_session")
    r = await city.http.post("/api/v1/auth/logout", headers={"authorization": f"Bearer {cookie['value']}"})
    assert r.status_code == 204
    await add_camera(city, "cam-0077")
    await expect(page.locator("#login-form")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#login-notice")).to_contain_text("session has ended")
    await expect(page.locator("#app-view")).to_be_hidden()


# --- phone and offline -----------------------------------------------------------


async def test_phone_viewport(browser: Browser, city: Running) -> None:
    page = await new_page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    await page.goto(city.url)
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshot_path("login-phone.png")))
    await open_dashboard(page, city)
    expected = await device_types(city)
    await wait_all_online(page, sum(expected.values()))
    await expect(page.locator('#feed li[data-event-type="device_heartbeat"]').nth(3)).to_be_attached()
    map_box = await page.locator("#map").bounding_box()
    feed_box = await page.locator("#feed-panel").bounding_box()
    assert map_box and feed_box
    assert map_box["width"] <= PHONE["width"] and map_box["height"] >= 250
    assert feed_box["y"] >= map_box["y"] + map_box["height"] - 1  # the feed sits below the map
    assert feed_box["width"] <= PHONE["width"]
    assert await no_horizontal_scroll(page)
    await expect(page.locator("#count-bodycam")).to_be_visible()
    await page.screenshot(path=str(screenshot_path("dashboard-phone.png")))
    await page.screenshot(path=str(screenshot_path("dashboard-phone-full.png")), full_page=True)
    assert js_errors(page) == []


async def test_no_external_requests(browser: Browser, city: Running) -> None:
    page = await new_page(browser)
    urls: list[str] = []
    page.on("request", lambda req: urls.append(req.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    await page.goto(city.url)
    await page.screenshot(path=str(screenshot_path("login-desktop.png")))
    await sign_in(page)
    await expect(page.locator("#ws-status")).to_have_text("live", timeout=WAIT_MS)
    expected = await device_types(city)
    await wait_all_online(page, sum(expected.values()))
    await page.locator(f'{MARKER}[data-device-id="bwc-01"]').click()
    await page.check("#layer-coverage")
    await expect(page.locator('#feed li[data-event-type="device_heartbeat"]').nth(3)).to_be_attached()

    origin = urlsplit(city.url)
    own = {(origin.hostname, origin.port)}
    outside = [
        u
        for u in urls
        if not u.startswith(("data:", "blob:")) and (urlsplit(u).hostname, urlsplit(u).port) not in own
    ]
    assert urls, "no requests recorded"
    assert any(u.startswith("ws://") for u in urls), "the live WebSocket was not opened"
    assert outside == [], f"requests left the center: {outside}"
    assert js_errors(page) == []
