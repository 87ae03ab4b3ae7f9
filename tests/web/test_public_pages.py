"""The public pages in a real browser, without signing in: community camera registration
(form, map position, view, email code, the owner's page, withdraw), the registry's approval
in the dashboard, and the transparency page (no personal data on it).

Chromium comes from ``RTCC_TEST_CHROMIUM``; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from rtcc.cameras.service import SERVICE_KEY
from tests.acoustic.test_pipeline_helpers import ORIGIN
from tests.conftest import Running, StartCenter
from tests.web.test_dashboard import (
    PHONE,
    WAIT_MS,
    js_errors,
    new_page,
    no_horizontal_scroll,
    open_dashboard,
    screenshot_path,
)
from tests.web.test_operations import open_tab, plate_camera, post_read

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

OWNER = {"name": "Dana Example-Owner", "email": "dana.owner@example.org", "phone": "+1 205 555 0142"}


def last_code(running: Running) -> str:
    """The 6-digit code of the last verification message (the demo notifier keeps them)."""
    sent = running.center.services[SERVICE_KEY].notifier.sent
    m = re.search(r"\b(\d{6})\b", sent[-1].body)
    assert m, sent[-1].body
    return m.group(1)


async def set_range(page: Page, sel: str, value: int) -> None:
    await page.eval_on_selector(
        sel, "(e, v) => { e.value = String(v); e.dispatchEvent(new Event('input', {bubbles: true})); }", value
    )


async def test_register_verify_approve_withdraw(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    page = await new_page(browser)
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    await page.goto(running.url + "register.html")
    await expect(page.locator("body")).to_have_attribute("data-step", "reg")

    # the form: position from the fields and the map, view direction and field of view
    await page.fill("#reg-name", "Front porch")
    lat, lon = ORIGIN[0] + 0.0021, ORIGIN[1] - 0.0013
    await page.fill("#reg-lat", f"{lat:.6f}")
    await page.fill("#reg-lon", f"{lon:.6f}")
    await page.dispatch_event("#reg-lon", "change")
    await expect(page.locator("path.reg-cone")).to_have_count(1)
    await page.locator("#reg-map").click()  # the map's centre: the camera's place, re-picked
    assert abs(float(await page.input_value("#reg-lat")) - lat) < 1e-4
    await set_range(page, "#reg-bearing", 135)
    await set_range(page, "#reg-fov", 70)
    await expect(page.locator("#reg-bearing-out")).to_have_text("135")
    await page.fill("#reg-owner", OWNER["name"])
    await page.fill("#reg-phone", OWNER["phone"])
    # refused in the page without a valid email (nothing sent)
    await page.click("#reg-submit")
    await expect(page.locator("#reg-msg")).to_contain_text("valid email")
    assert not [u for u in urls if "community/registrations" in u]
    await page.screenshot(path=str(screenshot_path("register-form.png")), full_page=True)
    await page.fill("#reg-email", OWNER["email"])
    await page.click("#reg-submit")
    await expect(page.locator("body")).to_have_attribute("data-step", "verify")

    # a wrong code is refused by the center; the emailed one opens the owner's page
    await page.fill("#verify-code", "000000" if last_code(running) != "000000" else "111111")
    await page.click("#verify-submit")
    await expect(page.locator("#reg-msg")).to_be_visible()
    await page.fill("#verify-code", last_code(running))
    await page.click("#verify-submit")
    await expect(page.locator("body")).to_have_attribute("data-step", "manage")
    await expect(page.locator("#manage-panel")).to_have_attribute("data-status", "pending_approval")
    await expect(page.locator("#manage-link a")).to_contain_text("community.html?manage=")
    manage_url = page.url
    assert "register.html?manage=" in manage_url

    # an admin approves it in the registry; the map shows it with its view cone
    admin_page = await new_page(browser)
    await open_dashboard(admin_page, running)
    await open_tab(admin_page, "cameras")
    await admin_page.select_option("#camera-filter", "pending_approval")
    row = admin_page.locator("#camera-list li.camera-row", has_text="Front porch")
    await expect(row).to_have_attribute("data-status", "pending_approval")
    await expect(row).to_have_attribute("data-kind", "community")
    await admin_page.screenshot(path=str(screenshot_path("camera-registry.png")))
    await row.locator('[data-action="approve"]').click()
    await admin_page.select_option("#camera-filter", "active")
    await expect(row).to_have_attribute("data-status", "active")
    cam_id = await row.get_attribute("data-camera-id")
    await expect(admin_page.locator(f'.leaflet-marker-icon[data-camera-id="{cam_id}"]')).to_have_count(1)
    await expect(admin_page.locator("path.view-cone")).to_have_count(1)
    assert js_errors(admin_page) == []

    # the owner sees it approved, and withdraws: everything is deleted
    await page.goto(manage_url)
    await expect(page.locator("#manage-panel")).to_have_attribute("data-status", "active")
    await expect(page.locator("#manage-table")).to_contain_text(OWNER["email"])  # their own page
    await page.screenshot(path=str(screenshot_path("register-manage.png")), full_page=True)
    await page.click("#withdraw-submit")
    await expect(page.locator("#reg-msg")).to_contain_text("Tick the box")
    await page.check("#withdraw-confirm")
    await page.click("#withdraw-submit")
    await expect(page.locator("body")).to_have_attribute("data-step", "done")
    await expect(page.locator("#done-title")).to_have_text("Withdrawn")
    admin = await running.login("admin")
    async with admin:
        r = await admin.get("/api/v1/cameras")
    assert cam_id not in {c["id"] for c in r.json()["items"]}
    # the old link no longer works
    await page.goto(manage_url)
    await expect(page.locator("#done-title")).to_have_text("Link not valid")
    # no session on the public page, and nothing asked of the signed-in API
    assert not [u for u in urls if "/auth/" in u]
    assert [e for e in js_errors(page) if not re.search(r"status of (404|409|422)", e)] == []


async def test_emailed_link_opens_the_page(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    async with running.http as http:
        r = await http.post(
            "/api/v1/community/registrations",
            json={
                "name": "Shop door",
                "owner_type": "business",
                "owner_name": "Corner Shop",
                "email": "shop@example.org",
                "lat": ORIGIN[0] + 0.001,
                "lon": ORIGIN[1] + 0.001,
                "bearing_deg": 90,
                "fov_deg": 60,
                "range_m": 25,
            },
        )
        assert r.status_code == 201, r.text
    link = re.search(
        r"https?://\S+community\.html\?verify=\S+",
        running.center.services[SERVICE_KEY].notifier.sent[-1].body,
    )
    assert link
    page = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await page.goto(link.group(0))
    await expect(page.locator("#manage-panel")).to_have_attribute(
        "data-status", "pending_approval", timeout=WAIT_MS
    )
    assert "register.html?manage=" in page.url
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshot_path("register-phone.png")), full_page=True)
    assert js_errors(page) == []


async def test_transparency_page_has_no_personal_data(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        r = await admin.post(
            "/api/v1/hotlists/entries",
            json={"plate": "4XYZ987", "category": "stolen_plate", "reason": "reported stolen"},
        )
        assert r.status_code == 201, r.text
        key = await plate_camera(running, "lpr-p1", *ORIGIN)
        await post_read(running, key, "lpr-p1", "4XYZ987", *ORIGIN)
        r = await admin.get(
            "/api/v1/plates/search",
            params={"plate": "4XYZ987", "purpose": "stolen plate follow-up", "case_number": "2026-000999"},
        )
        assert r.status_code == 200, r.text
    page = await new_page(browser)
    urls: list[str] = []
    page.on("request", lambda req: urls.append(req.url))
    await page.goto(running.url + "transparency.html")
    box = page.locator("#tr-sections")
    await expect(box).to_have_attribute("data-state", "ready")
    for section in ("operations", "plates", "cameras", "bodycams", "audit_chain"):
        await expect(box.locator(f'section[data-section="{section}"]')).to_be_visible()
    await expect(box.locator('section[data-section="plates"]')).to_contain_text("Criminal investigation")
    await expect(page.locator("#tr-generated")).to_contain_text("Generated")
    text = await page.locator("body").inner_text()
    for personal in ("4XYZ987", "2026-000999", "admin", "stolen plate follow-up", "lpr-p1"):
        assert personal not in text, personal
    assert not re.search(r"-?\d{1,3}\.\d{4,}", text), "a coordinate-like number on the public page"
    assert not [u for u in urls if "/auth/" in u]
    await page.screenshot(path=str(screenshot_path("transparency.png")), full_page=True)
    phone = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await phone.goto(running.url + "transparency.html")
    await expect(phone.locator("#tr-sections")).to_have_attribute("data-state", "ready")
    assert await no_horizontal_scroll(phone)
    await phone.screenshot(path=str(screenshot_path("transparency-phone.png")), full_page=True)
    assert js_errors(page) == [] and js_errors(phone) == []
