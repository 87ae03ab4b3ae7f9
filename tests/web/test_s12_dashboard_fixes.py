"""Dashboard fixes found by an audit in headless Chromium:

* closed or dismissed alerts and decided hits show their state on the map, live and after a reload;
* an open hit view follows a decision taken elsewhere (live, and after the center's 409);
* the body-cam command confirmation stays; the Units list follows heartbeats and "seen" ticks;
* a refused plate search clears the previous results;
* Assign pre-selects no unit (nearest first in the list) and refuses without one;
* keyboard: a skip link first, the packet view takes the focus and Escape gives it back.

Chromium comes from ``RTCC_TEST_CHROMIUM``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from rtcc.events import Alert, DeviceHeartbeat, Position, subject_for
from rtcc.roles import DeviceType, Role
from tests.acoustic.test_pipeline_helpers import ORIGIN
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import WAIT_MS, js_errors, new_page, open_dashboard
from tests.web.test_operations import PLATE, open_tab
from tests.web.test_s11_dashboard_fixes import upload_frame

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

PLACE = Position(lat=ORIGIN[0], lon=ORIGIN[1])


async def hotlist_plate(admin: httpx.AsyncClient) -> None:
    r = await admin.post(
        "/api/v1/hotlists/entries",
        json={"plate": PLATE, "category": "stolen_vehicle", "reason": "NCIC stolen 2026-11-01"},
    )
    assert r.status_code == 201, r.text


async def publish_alert(running: Running, title: str = "Gunfire: 4 rounds", pos: Position = PLACE) -> Alert:
    alert = Alert(source="ops", kind="test", severity="critical", title=title, pos=pos)
    assert running.center.bus is not None
    await running.center.bus.publish(subject_for("alert"), alert.to_json())
    return alert


async def only_hit(admin: httpx.AsyncClient) -> str:
    async def hit() -> str | None:
        r = await admin.get("/api/v1/hits")
        items = r.json()["items"]
        return str(items[0]["id"]) if items else None

    hit_id: str = await eventually(hit, what="the hit")
    return hit_id


async def open_popup(page: Page, selector: str) -> None:
    """Open a marker's popup (the marker may lie outside the visible part of the map)."""
    await page.locator(selector).dispatch_event("click")


# --- 1. the map shows an alert's and a hit's current state -----------------------------------------


async def test_settled_alerts_and_decided_hits_show_their_state_on_the_map(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        await hotlist_plate(admin)
        page = await new_page(browser)
        await open_dashboard(page, running)
        alert = await publish_alert(running)
        marker = page.locator(f'.leaflet-marker-icon[data-alert-id="{alert.alert_id}"]')
        await expect(marker).to_have_attribute("data-status", "new", timeout=WAIT_MS)
        await upload_frame(running, "lpr-s12")
        hit_id = await only_hit(admin)
        hit = page.locator(f'.leaflet-marker-icon[data-hit-id="{hit_id}"]')
        await expect(hit).to_have_attribute("data-status", "verify", timeout=WAIT_MS)

        # another operator dismisses the alert and rejects the hit: the markers follow live
        r = await admin.post(f"/api/v1/alerts/{alert.alert_id}/dismiss", json={"reason": "fireworks"})
        assert r.status_code == 200, r.text
        r = await admin.post(
            f"/api/v1/hits/{hit_id}/decision", json={"decision": "rejected", "reason": "misread: 8 as B"}
        )
        assert r.status_code == 200, r.text
        await expect(marker).to_have_attribute("data-status", "dismissed", timeout=WAIT_MS)
        await expect(marker).to_have_class(re.compile(r"\balert-settled\b"))
        await expect(hit).to_have_attribute("data-status", "rejected", timeout=WAIT_MS)
        await open_popup(page, f'.leaflet-marker-icon[data-alert-id="{alert.alert_id}"]')
        popup = page.locator(".popup-alert")
        await expect(popup).to_have_attribute("data-status", "dismissed")
        await expect(popup).to_contain_text("fireworks")
        await open_popup(page, f'.leaflet-marker-icon[data-hit-id="{hit_id}"]')
        title = page.locator(".popup-hit .popup-title")
        await expect(title).to_have_text("Hotlist hit — rejected as a misread")
        await expect(page.locator(".popup-hit")).to_contain_text("misread: 8 as B")

        # a reload replays the alert and the hit as they began: the page shows where they are now
        await page.reload()
        await expect(page.locator("#ws-status")).to_have_text("live", timeout=WAIT_MS)
        await expect(marker).to_have_attribute("data-status", "dismissed", timeout=WAIT_MS)
        await expect(hit).to_have_attribute("data-status", "rejected", timeout=WAIT_MS)
        await open_popup(page, f'.leaflet-marker-icon[data-hit-id="{hit_id}"]')
        await expect(page.locator(".popup-hit .popup-title")).not_to_contain_text("verify before action")
    assert js_errors(page) == []


# --- 2. the open hit view follows a decision taken elsewhere ---------------------------------------


async def open_hit_from_queue(page: Page) -> None:
    await open_tab(page, "alerts")
    row = page.locator('li.alert-row[data-kind="hotlist_hit"]')
    await expect(row).to_have_attribute("data-status", "new", timeout=WAIT_MS)
    await row.locator('[data-action="open"]').click()
    await expect(page.locator("#packet-view .hit-view")).to_have_attribute("data-status", "verify")


async def test_the_open_hit_follows_a_decision_taken_elsewhere(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("officer1", Role.officer)
    admin = await running.login("admin")
    async with admin:
        await hotlist_plate(admin)
        page = await new_page(browser)
        await open_dashboard(page, running, "officer1")
        await upload_frame(running, "lpr-s12")
        hit_id = await only_hit(admin)
        await open_hit_from_queue(page)
        hit = page.locator("#packet-view .hit-view")

        r = await admin.post(
            f"/api/v1/hits/{hit_id}/decision", json={"decision": "confirmed", "reason": "NCIC re-checked"}
        )
        assert r.status_code == 200, r.text
        await expect(hit).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
        await expect(hit.locator(".verify-banner")).to_contain_text("confirmed by admin — NCIC re-checked")
        await expect(hit.locator('[data-action="confirm"], [data-action="reject"]')).to_have_count(0)
    assert js_errors(page) == []


async def test_a_decision_refused_as_already_taken_shows_the_hit_as_decided(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("officer1", Role.officer)
    admin = await running.login("admin")
    async with admin:
        await hotlist_plate(admin)
        page = await new_page(browser)
        await open_dashboard(page, running, "officer1")
        await upload_frame(running, "lpr-s12")
        hit_id = await only_hit(admin)
        await open_hit_from_queue(page)
        hit = page.locator("#packet-view .hit-view")
        await hit.locator('[data-action="reject"]').click()
        form = hit.locator('form[data-form="decision-rejected"]')
        await form.locator("input").fill("misread: 8 read as B")

        # an analyst confirms the hit just before the officer's reject reaches the center (409)
        async def confirm_first(route: Route) -> None:
            r = await admin.post(
                f"/api/v1/hits/{hit_id}/decision", json={"decision": "confirmed", "reason": "NCIC re-checked"}
            )
            assert r.status_code == 200, r.text
            await route.continue_()

        await page.route("**/api/v1/hits/*/decision", confirm_first)
        await form.locator('button[type="submit"]').click()
        await expect(hit).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
        await expect(hit.locator(".hit-msg")).to_contain_text("already confirmed")
        await expect(hit.locator("form")).to_have_count(0)
        await expect(hit.locator('[data-action="reject"]')).to_have_count(0)
    assert [e for e in js_errors(page) if "status of 409" not in e] == []


# --- 3 & 4. body-cam control: the confirmation stays; the list follows heartbeats ------------------


async def test_bodycam_confirmation_stays_after_the_list_reloads(
    browser: Browser,  # noqa: F811
    city: Running,
) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    await open_tab(page, "units")
    unit = page.locator('#unit-list li[data-unit-id="bwc-01"]')
    await expect(unit).to_be_visible(timeout=WAIT_MS)
    action = "stop_recording" if await unit.get_attribute("data-recording") == "true" else "start_recording"
    await unit.locator(f'[data-action="{action}"]').click()
    await unit.locator('form[data-form="reason"] input').fill("shots reported near the unit")
    await page.keyboard.press("Enter")
    # the list reloaded (the command is listed, then acked): the confirmation is still there
    await expect(page.locator('#command-list li[data-status="acked"]').first).to_contain_text(
        "bwc-01", timeout=WAIT_MS
    )
    await expect(page.locator("#unit-msg")).to_be_visible()
    await expect(page.locator("#unit-msg")).to_contain_text("sent to")
    assert js_errors(page) == []


async def test_units_follow_heartbeats_and_last_seen_ticks(
    browser: Browser,  # noqa: F811
    city: Running,
) -> None:
    key: str = await city.center.provision_device(
        "bwc-s12", DeviceType.bodycam, "Unit S12", PLACE.lat, PLACE.lon, {}
    )
    page = await new_page(browser)
    await open_dashboard(page, city)
    await open_tab(page, "units")
    unit = page.locator('#unit-list li[data-unit-id="bwc-s12"]')
    await expect(unit).to_contain_text("seen never", timeout=WAIT_MS)

    # a heartbeat 50 s old, with the battery: the row follows it, then "seen" ticks past the minute
    hb = DeviceHeartbeat(
        source="bwc-s12",
        device="bwc-s12",
        device_type=DeviceType.bodycam,
        pos=PLACE,
        battery_pct=42,
        occurred_at=datetime.now(UTC) - timedelta(seconds=50),
    )
    r = await city.http.post(
        "/api/v1/ingest/events",
        headers={"authorization": f"Device {key}"},
        json={"events": [hb.model_dump(mode="json")]},
    )
    assert r.status_code < 300, r.text
    await expect(unit.locator(".unit-battery")).to_have_text("battery 42 %", timeout=WAIT_MS)
    await expect(unit.locator(".unit-seen")).to_have_text(re.compile(r"seen \d+ s ago"))
    await expect(unit.locator(".unit-seen")).to_have_text("seen 1 min ago", timeout=WAIT_MS)
    assert js_errors(page) == []


# --- 5. a refused plate search clears the previous results -----------------------------------------


async def refuse_with_422(route: Route) -> None:
    body = {"error": {"code": "validation_failed", "message": "purpose too vague", "details": {}}}
    await route.fulfill(status=422, content_type="application/json", body=json.dumps(body))


async def test_a_refused_plate_search_clears_the_previous_results(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await upload_frame(running, "lpr-s12")
    await open_tab(page, "plates")
    results = page.locator("#plate-results li.read-row")

    async def search() -> None:
        await page.fill("#ps-plate", PLATE)
        await page.fill("#ps-purpose", "burglary suspect vehicle")
        await page.fill("#ps-case", "2026-004711")
        await page.click("#ps-submit")
        await expect(results).to_have_count(1)

    # refused by the page (no case number)
    await search()
    await page.fill("#ps-case", "")
    await page.click("#ps-submit")
    await expect(page.locator("#plate-msg")).to_contain_text("case number")
    await expect(results).to_have_count(0)

    # refused by the center
    await search()
    await page.route("**/api/v1/plates/search*", refuse_with_422)
    await page.click("#ps-submit")
    await expect(page.locator("#plate-msg")).to_contain_text("purpose too vague")
    await expect(page.locator("#plate-search")).to_have_attribute("data-refused", "server")
    await expect(results).to_have_count(0)
    assert [e for e in js_errors(page) if "status of 422" not in e] == []


# --- 6. Assign: no unit chosen until the operator picks one ----------------------------------------


async def test_assign_preselects_no_unit_and_lists_the_nearest_first(
    browser: Browser,  # noqa: F811
    city: Running,
) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    await expect(page.locator('.leaflet-marker-icon[data-device-type="bodycam"]')).to_have_count(
        3, timeout=WAIT_MS
    )
    sim = city.settings.sim
    alert = await publish_alert(city, "Check a report", Position(lat=sim.center_lat, lon=sim.center_lon))
    await open_tab(page, "alerts")
    row = page.locator(f'li.alert-row[data-alert-id="{alert.alert_id}"]')
    await expect(row).to_have_attribute("data-status", "new", timeout=WAIT_MS)
    await row.locator('[data-action="assign"]').click()
    form = row.locator('form[data-form="assign"]')
    unit = form.locator('input[name="unit"]')
    await expect(unit).to_have_value("")
    await expect(unit).to_be_focused()
    labels = await form.locator("datalist option").evaluate_all("(os) => os.map((o) => o.label)")
    assert len(labels) == 3
    metres = [float(re.sub(r"[^0-9.]", "", x.split("—")[1])) * (1000 if "km" in x else 1) for x in labels]
    assert metres == sorted(metres)
    await expect(form.locator(".assign-near")).to_contain_text("Nearest:")

    # Enter with no unit chosen: refused, with a visible message; the alert is not assigned
    await page.keyboard.press("Enter")
    await expect(form.locator(".msg")).to_contain_text("Choose a unit")
    await expect(row).to_have_attribute("data-status", "new")
    await unit.fill("bwc-02")
    await page.keyboard.press("Enter")
    await expect(row).to_have_attribute("data-status", "assigned")
    assert js_errors(page) == []


# --- 7. keyboard ------------------------------------------------------------------------------


async def test_keyboard_skip_link_and_the_packet_view_focus(
    browser: Browser,  # noqa: F811
    city: Running,
) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    alert = await publish_alert(city, "Check a report")
    await expect(page.locator('#side-tabs [data-tab="alerts"]')).to_be_visible()

    # the first Tab reaches the skip link; it leads past the map's markers to the Alerts tab
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    await page.keyboard.press("Tab")
    await expect(page.locator("#skip-link")).to_be_focused()
    await expect(page.locator("#skip-link")).to_be_visible()
    await page.keyboard.press("Enter")
    await expect(page.locator("#tab-btn-alerts")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#tab-alerts")).to_be_visible()

    # opening a packet moves the focus into it; Escape closes it and gives the focus back
    row = page.locator(f'li.alert-row[data-alert-id="{alert.alert_id}"]')
    await expect(row).to_have_attribute("data-status", "new", timeout=WAIT_MS)
    opener = row.locator('[data-action="open"]')
    await opener.focus()
    await page.keyboard.press("Enter")
    view = page.locator("#packet-view")
    await expect(view).to_be_visible()
    await expect(page.locator("#packet-title")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(view).to_be_hidden()
    await expect(opener).to_be_focused()
    assert js_errors(page) == []
