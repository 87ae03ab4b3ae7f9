"""Dashboard fixes found by driving it in Chromium against a real center:

* the packet view follows the alert it was opened from: after a hit decision or a gunshot review
  taken in it, and on live ``alert_updated`` events; an action's error is shown in the packet view
  (not in the queue hidden behind it);
* an undecided hit's alert and a pending review's alert offer no Dismiss / Close (the center refuses
  them, 409): they offer the decision instead, in plain words;
* a plate read found by a search opens: its text, confidence, camera, time, place and photos, read
  with the search's purpose and case number (audited);
* the auditor's dashboard makes no call the role may not make (no 403s).

Chromium comes from ``RTCC_TEST_CHROMIUM``.
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, Response, Route, expect

from rtcc.events import Alert, Position, subject_for
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import ORIGIN, post_pulses, provision_array, shot_pulses
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.plates.render_helpers import car_with_plate, jpeg
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import WAIT_MS, js_errors, new_page, open_dashboard
from tests.web.test_operations import PLATE, open_tab, plate_camera

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

STALE = "alert is acknowledged: it cannot be acknowledged"


async def upload_frame(running: Running, device_id: str) -> None:
    """A plate camera near the origin uploads a frame showing PLATE (stored with crop and vehicle photo)."""
    key = await plate_camera(running, device_id, *ORIGIN)
    r = await running.http.post(
        "/api/v1/plates/images",
        headers={"authorization": f"Device {key}"},
        files={"image": ("frame.jpg", jpeg(car_with_plate(PLATE)), "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    assert [x["plate"] for x in r.json()["reads"]] == [PLATE]


async def refuse_with_409(route: Route) -> None:
    """The center's answer when the alert moved meanwhile."""
    body = {"error": {"code": "conflict", "message": STALE, "details": {}}, "request_id": "t"}
    await route.fulfill(status=409, content_type="application/json", body=json.dumps(body))


async def test_the_open_alert_follows_live_updates_and_shows_its_errors(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("sup1", Role.supervisor)
    page = await new_page(browser)
    await open_dashboard(page, running, "sup1")
    alert = Alert(
        source="ops",
        kind="test",
        severity="warning",
        title="Check a report",
        pos=Position(lat=ORIGIN[0], lon=ORIGIN[1]),
    )
    assert running.center.bus is not None
    await running.center.bus.publish(subject_for("alert"), alert.to_json())
    await open_tab(page, "alerts")
    row = page.locator(f'li.alert-row[data-alert-id="{alert.alert_id}"]')
    await expect(row).to_have_attribute("data-status", "new", timeout=WAIT_MS)
    await row.locator('[data-action="open"]').click()
    view = page.locator("#packet-view")
    await expect(view).to_have_attribute("data-kind", "alert")
    actions = view.locator(".packet-actions")
    await expect(actions).to_have_attribute("data-status", "new")

    # another operator acknowledges it: the open view follows (no stale Acknowledge to click)
    admin = await running.login("admin")
    async with admin:
        r = await admin.post(f"/api/v1/alerts/{alert.alert_id}/acknowledge")
        assert r.status_code == 200, r.text
    await expect(actions).to_have_attribute("data-status", "acknowledged", timeout=WAIT_MS)
    await expect(actions.locator('[data-action="acknowledge"]')).to_have_count(0)

    # an action refused by the center is explained in the view where it was taken
    await page.route("**/api/v1/alerts/*/close", refuse_with_409)
    await actions.locator('[data-action="close"]').click()
    await expect(page.locator("#packet-body > p.msg")).to_contain_text(STALE)
    assert [e for e in js_errors(page) if "status of 409" not in e] == []


async def test_hit_alert_is_settled_by_the_decision_and_the_packet_follows(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("sup1", Role.supervisor)
    admin = await running.login("admin")
    async with admin:
        r = await admin.post(
            "/api/v1/hotlists/entries",
            json={"plate": PLATE, "category": "stolen_vehicle", "reason": "NCIC stolen 2026-11-01"},
        )
        assert r.status_code == 201, r.text
        page = await new_page(browser)
        await open_dashboard(page, running, "sup1")
        await upload_frame(running, "lpr-s11")

        # the queue: an undecided hit offers the decision, not Dismiss / Close (the center refuses them)
        await open_tab(page, "alerts")
        row = page.locator('li.alert-row[data-kind="hotlist_hit"]')
        await expect(row).to_have_attribute("data-status", "new", timeout=WAIT_MS)
        await expect(row.locator('[data-action="decide"]')).to_have_text("Confirm or reject…")
        await expect(row.locator(".decide-hint")).to_contain_text("confirm the hit or reject it as a misread")
        await expect(row.locator('[data-action="dismiss"], [data-action="close"]')).to_have_count(0)
        alert_id = await row.get_attribute("data-alert-id")

        # the packet view: the same; an action's error is shown in it
        await row.locator('[data-action="decide"]').click()
        view = page.locator("#packet-view")
        await expect(view).to_have_attribute("data-kind", "hit")
        hit = view.locator(".hit-view")
        await expect(hit).to_have_attribute("data-status", "verify")
        actions = view.locator(".packet-actions")
        await expect(actions).to_have_attribute("data-status", "new")
        await expect(actions.locator(".decide-hint")).to_contain_text("Verify before action")
        await expect(actions.locator('[data-action="dismiss"], [data-action="close"]')).to_have_count(0)
        await page.route("**/api/v1/alerts/*/acknowledge", refuse_with_409)
        await actions.locator('[data-action="acknowledge"]').click()
        await expect(page.locator("#packet-body > p.msg")).to_contain_text(STALE)
        await page.unroute("**/api/v1/alerts/*/acknowledge", refuse_with_409)

        # confirm the hit: the center acknowledges its alert, and the packet says so
        await hit.locator('[data-action="confirm"]').click()
        form = hit.locator('form[data-form="decision-confirmed"]')
        await form.locator("input").fill("plate and vehicle match, NCIC re-checked")
        await form.locator('button[type="submit"]').click()
        await expect(hit).to_have_attribute("data-status", "confirmed")
        await expect(actions).to_have_attribute("data-status", "acknowledged")
        await expect(actions.locator(".status-tag")).to_have_text("acknowledged")
        await expect(actions.locator('[data-action="acknowledge"]')).to_have_count(0)
        # decided: it may now be closed or dismissed like any alert
        await expect(actions.locator('[data-action="close"]')).to_have_count(1)
        await expect(actions.locator(".decide-hint")).to_have_count(0)
        await expect(view.locator("#packet-title")).to_contain_text("CONFIRMED")

        # another operator assigns it: the open packet follows live
        r = await admin.post(f"/api/v1/alerts/{alert_id}/assign", json={"unit": "Unit 7"})
        assert r.status_code == 200, r.text
        await expect(actions).to_have_attribute("data-status", "assigned", timeout=WAIT_MS)
        await expect(actions.locator('[data-action="assign"]')).to_have_text("Reassign")
        assert [e for e in js_errors(page) if "status of 409" not in e] == []


async def test_pending_review_alert_is_settled_by_the_review(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    arr = await provision_array(running)
    # no audio: the confidence is acoustic.no_audio_confidence (0.5), the review band
    await post_pulses(running, arr, shot_pulses(arr, (40.0, -60.0), rounds=(0.0, 0.5), audio=False))
    admin = await running.login("admin")
    async with admin:

        async def pending() -> str | None:
            r = await admin.get("/api/v1/alerts", params={"status": "new"})
            items = [a for a in r.json()["items"] if a["kind"] == "gunshot_review"]
            return str(items[0]["id"]) if items else None

        alert_id = await eventually(pending, what="the review alert")
    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await open_tab(page, "alerts")
    row = page.locator(f'li.alert-row[data-alert-id="{alert_id}"]')
    await expect(row).to_have_attribute("data-status", "new", timeout=WAIT_MS)
    await expect(row.locator('[data-action="decide"]')).to_have_text("Review…")
    await expect(row.locator(".decide-hint")).to_contain_text("Waiting for review")
    await expect(row.locator('[data-action="dismiss"], [data-action="close"]')).to_have_count(0)

    await row.locator('[data-action="open"]').click()
    view = page.locator("#packet-view")
    await expect(view).to_have_attribute("data-kind", "gunshot")
    actions = view.locator(".packet-actions")
    await expect(actions.locator(".decide-hint")).to_contain_text("Waiting for review")
    await expect(actions.locator('[data-action="dismiss"], [data-action="close"]')).to_have_count(0)
    # dismiss the incident in review: the center dismisses its alert, and the packet says so
    await view.locator('[data-action="review-dismiss"]').click()
    form = view.locator('form[data-form="review-dismiss"]')
    await form.locator("input").fill("known construction site")
    await form.locator('button[type="submit"]').click()
    await expect(view.locator(".gunshot-review")).to_have_attribute("data-status", "dismissed")
    await expect(actions).to_have_attribute("data-status", "dismissed")
    await expect(actions.locator("button")).to_have_count(0)
    assert js_errors(page) == []


async def test_a_searched_plate_read_opens_with_its_photos(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await upload_frame(running, "lpr-r1")
    await open_tab(page, "plates")
    await page.fill("#ps-plate", PLATE)
    await page.fill("#ps-purpose", "burglary suspect vehicle")
    await page.fill("#ps-case", "2026-004711")
    await page.click("#ps-submit")
    result = page.locator("#plate-results li.read-row")
    await expect(result).to_have_count(1)
    read_id = await result.get_attribute("data-read-id")

    # a click on the row opens the read: text, confidence, camera, time, place and both photos
    await result.locator(".row-main").click()
    detail = page.locator("#plate-read")
    await expect(detail).to_be_visible()
    await expect(detail).to_have_attribute("data-read-id", str(read_id))
    await expect(detail.locator('[data-field="plate"]')).to_contain_text(PLATE)
    await expect(detail.locator('[data-field="camera"]')).to_contain_text("lpr-r1")
    await expect(detail.locator('[data-field="confidence"]')).to_contain_text("%")
    await expect(detail.locator('[data-field="place"]')).to_contain_text(f"{ORIGIN[0]:.5f}")
    await expect(detail.locator('[data-field="time"] td')).not_to_be_empty()
    for kind in ("crop", "vehicle"):
        await expect(detail.locator(f'figure[data-photo="{kind}"] img')).to_be_visible()
    await page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('#plate-read img')];"
        " return i.length === 2 && i.every((x) => x.complete && x.naturalWidth > 0); }"
    )
    src = await detail.locator('figure[data-photo="crop"] img').get_attribute("src")
    assert src is not None and "case_number=2026-004711" in src

    # each look is audited with the search's purpose and case number
    admin = await running.login("admin")
    async with admin:
        for action in ("read_plate_read", "read_plate_image"):
            r = await admin.get("/api/v1/audit", params={"action": action})
            assert r.status_code == 200, r.text
            entries = [e for e in r.json()["items"] if e.get("record_id") == read_id]
            assert entries and all(e["details"].get("case_number") == "2026-004711" for e in entries)
    await detail.locator('[data-action="close-read"]').click()
    await expect(detail).to_be_hidden()
    assert js_errors(page) == []


async def test_the_auditor_dashboard_makes_no_forbidden_call(
    browser: Browser,  # noqa: F811
    city: Running,
) -> None:
    city.add_user("auditor1", Role.auditor)
    page = await new_page(browser)
    forbidden: list[str] = []
    api: list[str] = []

    def seen(res: Response) -> None:
        if "/api/v1/" in res.url:
            api.append(res.url)
            if res.status == 403:
                forbidden.append(res.url)

    page.on("response", seen)
    await open_dashboard(page, city, "auditor1")
    # the page has finished loading: the stats tab (the auditor's) shows after the start-up calls
    await expect(page.locator('#side-tabs [data-tab="stats"]')).to_be_visible()
    async with page.expect_response(lambda r: "/api/v1/stats/outcomes" in r.url):
        await page.click('#side-tabs [data-tab="stats"]')
    await expect(page.locator("#tab-stats")).to_be_visible()
    # the oversight board's Audit tab: the log and its verification, never the accounts (admins')
    async with page.expect_response(lambda r: "/api/v1/audit?" in r.url):
        await page.click('#side-tabs [data-tab="audit"]')
    async with page.expect_response(lambda r: "/api/v1/audit/verify" in r.url):
        await page.click('#tab-audit [data-action="verify"]')
    await expect(page.locator("#audit-verify")).to_have_attribute("data-ok", "true")
    await expect(page.locator('#side-tabs [data-tab="users"]')).to_be_hidden()
    assert not [u for u in api if "/api/v1/users" in u]
    assert any("/api/v1/map" in u for u in api)
    assert forbidden == []
    await expect(page.locator("#notice")).to_contain_text("Devices unavailable to the auditor role")
    assert not [u for u in api if "/api/v1/devices" in u or "/api/v1/events" in u]
    assert js_errors(page) == []
