"""Operations views in a real browser against a real center: the alert queue, the incident
packet with the gunshot's audio, a hotlist hit (verify before action), plate search,
hotspot cells, body-cam control and statistics.

Chromium comes from ``RTCC_TEST_CHROMIUM``; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from rtcc.events import Alert, PlateRead, Position, subject_for
from rtcc.roles import DeviceType
from tests.acoustic.test_pipeline_helpers import (
    ORIGIN,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.plates.render_helpers import car_with_plate, jpeg
from tests.web.test_dashboard import (
    PHONE,
    WAIT_MS,
    js_errors,
    new_page,
    no_horizontal_scroll,
    open_dashboard,
    screenshot_path,
)

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

SHOT_XY = (0.0, -100.0)  # metres east/north of the test array's origin
PLATE = "7KDR582"  # the rendered plate the recognizer reads in its own tests


async def gunshot_alert(running: Running, client: httpx.AsyncClient) -> dict[str, Any]:
    """Real pulses through the ingest → a located incident → its alert in the queue."""
    arr = await provision_array(running)
    use_classifier(pipeline_of(running), 0.95)  # above alert_above: an alert at once
    await post_pulses(running, arr, shot_pulses(arr, SHOT_XY))

    async def queued() -> dict[str, Any] | None:
        r = await client.get("/api/v1/alerts", params={"status": "new"})
        items = [a for a in r.json()["items"] if a["kind"] == "gunshot"]
        return items[0] if items else None

    alert: dict[str, Any] = await eventually(queued, what="the gunshot alert in the queue")
    return alert


async def plate_camera(running: Running, device_id: str, lat: float, lon: float) -> str:
    """Register a plate camera; its device key."""
    key: str = await running.center.provision_device(
        device_id, DeviceType.plate_camera, f"LPR {device_id}", lat, lon, {}
    )
    return key


async def post_read(
    running: Running, key: str, device_id: str, plate: str, lat: float, lon: float
) -> PlateRead:
    read = PlateRead(
        source=device_id, device=device_id, pos=Position(lat=lat, lon=lon), plate=plate, confidence=0.93
    )
    r = await running.http.post(
        "/api/v1/ingest/events",
        headers={"authorization": f"Device {key}"},
        json={"events": [read.model_dump(mode="json")]},
    )
    assert r.status_code == 202, r.text
    return read


async def open_tab(page: Page, name: str) -> None:
    await page.click(f'#side-tabs [data-tab="{name}"]')
    await expect(page.locator(f"#tab-{name}")).to_be_visible()


# --- alert queue + incident packet -------------------------------------------------------


async def test_alert_queue_and_incident_packet(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        alert = await gunshot_alert(running, admin)
        iid = alert["ref_id"]
        page = await new_page(browser)
        await open_dashboard(page, running)

        # the queue: the new alert, with a badge on the tab
        await expect(page.locator("#alerts-badge")).to_have_text("1")
        await open_tab(page, "alerts")
        row = page.locator(f'li.alert-row[data-alert-id="{alert["id"]}"]')
        await expect(row).to_have_attribute("data-status", "new")
        await expect(row).to_contain_text("Gunfire")

        # the packet: details, audio of each contributing sensor, the four sections
        await row.locator('[data-action="open"]').click()
        view = page.locator("#packet-view")
        await expect(view).to_have_attribute("data-kind", "gunshot")
        await expect(view).to_have_attribute("data-ref-id", iid)
        await expect(view.locator(".packet-sections")).to_have_attribute(
            "data-state", "ready", timeout=WAIT_MS
        )
        for section in ("cameras", "reads", "units", "earlier"):
            await expect(view.locator(f'[data-section="{section}"]')).to_be_visible()
        audio = view.locator(".audio-row audio")
        assert await audio.count() >= 3
        duration = await audio.first.evaluate(
            """(a) => new Promise((ok, fail) => {
                a.addEventListener('loadedmetadata', () => ok(a.duration), {once: true});
                const failed = () => fail(new Error('audio failed: ' + (a.error && a.error.code)));
                a.addEventListener('error', failed, {once: true});
                a.preload = 'metadata'; a.load();
            })"""
        )
        assert 0.1 < duration < 2.0  # the FLAC the sensor sent (0.3 s around the onset)

        # updated live: a plate read near the place rebuilds the packet, and the view follows; a read
        # that hit no hotlist is counted, not listed (reading it is a search with a purpose and a case)
        lat, lon = alert["lat"], alert["lon"]
        key = await plate_camera(running, "lpr-t1", lat + 0.0003, lon)
        await post_read(running, key, "lpr-t1", "7TST123", lat + 0.0003, lon)
        others = view.locator('[data-section="reads"] .other-reads')
        await expect(others).to_have_attribute("data-others", "1", timeout=WAIT_MS)
        await expect(others).to_contain_text("purpose and a case number")
        await expect(view.locator('[data-section="reads"]')).not_to_contain_text("7TST123")

        # act on the alert from the packet: acknowledge, then assign to a unit
        actions = view.locator(".packet-actions")
        await actions.locator('[data-action="acknowledge"]').click()
        await expect(actions).to_have_attribute("data-status", "acknowledged")
        await expect(row).to_have_attribute("data-status", "acknowledged")
        await actions.locator('[data-action="assign"]').click()
        await actions.locator('input[name="unit"]').fill("Unit 12")
        await actions.locator('form[data-form="assign"] button[type="submit"]').click()
        await expect(actions).to_have_attribute("data-status", "assigned")
        await page.screenshot(path=str(screenshot_path("packet-gunshot.png")))
        r = await admin.get(f"/api/v1/alerts/{alert['id']}")
        assert r.json()["status"] == "assigned" and r.json()["assigned_unit"] == "Unit 12"

        # another operator closes it: this page follows live
        await page.click("#packet-close")
        await expect(view).to_be_hidden()
        r = await admin.post(f"/api/v1/alerts/{alert['id']}/close")
        assert r.status_code == 200, r.text
        await expect(row).to_have_count(0)  # the "open" filter no longer shows it
        await page.select_option("#alerts-status", "closed")
        await expect(row).to_have_attribute("data-status", "closed")

        # dismissing needs a reason: refused in the page, then done with one
        assert running.center.bus is not None
        other = Alert(
            source="ops",
            kind="test",
            severity="warning",
            title="Check a report",
            pos=Position(lat=lat, lon=lon),
        )
        await running.center.bus.publish(subject_for("alert"), other.to_json())
        await page.select_option("#alerts-status", "open")
        row2 = page.locator(f'li.alert-row[data-alert-id="{other.alert_id}"]')
        await expect(row2).to_have_attribute("data-status", "new", timeout=WAIT_MS)
        await row2.locator('[data-action="dismiss"]').click()
        await row2.locator('form[data-form="reason"] button[type="submit"]').click()
        await expect(row2.locator("form .msg")).to_contain_text("reason is required")
        await row2.locator('input[name="reason"]').fill("duplicate of the 911 call")
        await row2.locator('form[data-form="reason"] button[type="submit"]').click()
        await expect(row2).to_have_count(0)
        r = await admin.get(f"/api/v1/alerts/{other.alert_id}")
        assert r.json()["status"] == "dismissed"
        assert r.json()["dismiss_reason"] == "duplicate of the 911 call"

        # hotspot cells from the incident history, as a layer
        await page.check("#layer-hotspots")
        await expect(page.locator("path.hotspot-cell").first).to_be_attached(timeout=WAIT_MS)
        await page.check("#layer-recommend")
        rec = (await admin.get("/api/v1/analytics/recommendations")).json()
        assert rec["features"], "the incident's cell is recommended for this shift"
        await expect(page.locator("path.recommend-cell")).to_have_count(len(rec["features"]))
        await page.screenshot(path=str(screenshot_path("alerts-queue.png")))
        assert js_errors(page) == []


# --- hotlist hit: verify before action; plate search --------------------------------------


async def test_hit_view_and_plate_search(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    lat, lon = ORIGIN
    admin = await running.login("admin")
    async with admin:
        r = await admin.post(
            "/api/v1/hotlists/entries",
            json={"plate": PLATE, "category": "stolen_vehicle", "reason": "NCIC stolen 2026-11-01"},
        )
        assert r.status_code == 201, r.text
        page = await new_page(browser)
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url))
        await open_dashboard(page, running)
        key = await plate_camera(running, "lpr-h1", lat, lon)
        # a camera uploads a frame: the center reads the plate, keeps the crop and the vehicle image
        r = await running.http.post(
            "/api/v1/plates/images",
            headers={"authorization": f"Device {key}"},
            files={"image": ("frame.jpg", jpeg(car_with_plate(PLATE)), "image/jpeg")},
        )
        assert r.status_code == 201, r.text
        assert [x["plate"] for x in r.json()["reads"]] == [PLATE]

        # the hit arrives live: a marker on the map and an alert in the queue
        await expect(page.locator(".leaflet-marker-icon[data-hit-id]")).to_have_count(1, timeout=WAIT_MS)
        await open_tab(page, "alerts")
        row = page.locator('li.alert-row[data-kind="hotlist_hit"]')
        await expect(row).to_contain_text("verify before action")
        await row.locator('[data-action="open"]').click()
        view = page.locator("#packet-view")
        await expect(view).to_have_attribute("data-kind", "hit")
        hit = view.locator(".hit-view")
        await expect(hit).to_have_attribute("data-status", "verify")
        await expect(hit.locator(".verify-banner")).to_contain_text("Verify before action")
        await expect(hit.locator(".hit-entry")).to_contain_text("stolen vehicle")
        await expect(hit.locator(".hit-entry")).to_contain_text("NCIC stolen 2026-11-01")
        # the read's photos beside the entry
        for kind in ("crop", "vehicle"):
            await expect(hit.locator(f'.hit-photos figure[data-photo="{kind}"] img')).to_be_visible()
        await page.wait_for_function(
            "() => [...document.querySelectorAll('.hit-photos img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)"
        )

        # reject as a misread: a reason is required
        await hit.locator('[data-action="reject"]').click()
        form = hit.locator('form[data-form="decision-rejected"]')
        await form.locator('button[type="submit"]').click()
        await expect(form.locator(".msg")).to_contain_text("reason is required")
        await form.locator("input").fill("misread: plate is 7KDR583")
        await form.locator('button[type="submit"]').click()
        await expect(hit).to_have_attribute("data-status", "rejected")
        hit_id = await view.get_attribute("data-ref-id")
        r = await admin.get(f"/api/v1/hits/{hit_id}")
        assert r.json()["status"] == "rejected" and r.json()["decision_reason"] == "misread: plate is 7KDR583"
        await page.screenshot(path=str(screenshot_path("hit-view.png")))
        await page.click("#packet-close")

        # plate search: refused in the page without purpose and case number (nothing sent) ...
        await open_tab(page, "plates")
        await page.fill("#ps-plate", PLATE)
        await page.click("#ps-submit")
        await expect(page.locator("#plate-msg")).to_contain_text("purpose")
        await expect(page.locator("#plate-msg")).to_contain_text("case number")
        await expect(page.locator("#plate-search")).to_have_attribute("data-refused", "client")
        assert not [u for u in requests if "plates/search" in u]
        # ... and by the center too
        status = await page.evaluate(f"fetch('api/v1/plates/search?plate={PLATE}').then(r => r.status)")
        assert status == 422
        # with both: results, and the vehicle's track on the map
        await page.fill("#ps-purpose", "stolen vehicle follow-up")
        await page.fill("#ps-case", "2026-000123")
        await page.click("#ps-submit")
        result = page.locator("#plate-results li.read-row")
        await expect(result).to_have_count(1)
        await expect(result).to_have_attribute("data-plate", PLATE)
        await result.locator('[data-action="track"]').click()
        await expect(page.locator(f'.leaflet-marker-icon[data-track-plate="{PLATE}"]')).to_have_count(1)
        await page.screenshot(path=str(screenshot_path("plate-search.png")))
        r = await admin.get("/api/v1/audit", params={"action": "plate_search"})
        assert any(e["details"].get("case_number") == "2026-000123" for e in r.json()["items"])
        assert [e for e in js_errors(page) if "status of 422" not in e] == []  # the refused fetch above


# --- body-cam control ---------------------------------------------------------------------


async def test_bodycam_control(browser: Browser, city: Running) -> None:
    page = await new_page(browser)
    await open_dashboard(page, city)
    await open_tab(page, "units")
    unit = page.locator('#unit-list li[data-unit-id="bwc-01"]')
    await expect(unit).to_be_visible(timeout=WAIT_MS)
    recording = await unit.get_attribute("data-recording")
    action = "stop_recording" if recording == "true" else "start_recording"
    await unit.locator(f'[data-action="{action}"]').click()
    form = unit.locator('form[data-form="reason"]')
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".msg")).to_contain_text("reason is required")
    await form.locator("input").fill("shots reported near the unit")
    await form.locator('button[type="submit"]').click()
    cmd = page.locator('#command-list li[data-status="acked"]').first
    await expect(cmd).to_contain_text("bwc-01", timeout=WAIT_MS)
    want = "false" if recording == "true" else "true"
    await expect(
        page.locator(f'#unit-list li[data-unit-id="bwc-01"][data-recording="{want}"]')
    ).to_be_visible(timeout=WAIT_MS)
    await page.screenshot(path=str(screenshot_path("bodycam-control.png")))
    assert js_errors(page) == []


# --- statistics ---------------------------------------------------------------------------


async def test_statistics_show_the_outcome_ledger(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    assert running.center.bus is not None
    alert = Alert(
        source="ops",
        kind="gunshot",
        severity="critical",
        title="Gunfire",
        pos=Position(lat=ORIGIN[0], lon=ORIGIN[1]),
    )
    await running.center.bus.publish(subject_for("alert"), alert.to_json())
    admin = await running.login("admin")
    async with admin:

        async def stored() -> bool:
            return (await admin.get(f"/api/v1/alerts/{alert.alert_id}")).status_code == 200

        await eventually(stored, what="the alert stored")
        r = await admin.post("/api/v1/cases", json={"number": "2026-000777", "title": "Shots on 2nd Ave"})
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await admin.post(
            f"/api/v1/cases/{case_id}/links", json={"ref_type": "alert", "ref_id": str(alert.alert_id)}
        )
        assert r.status_code in (200, 201), r.text
        r = await admin.post(
            "/api/v1/outcomes",
            json={
                "items": [
                    {
                        "case_number": "2026-000777",
                        "ref_type": "alert",
                        "ref_id": str(alert.alert_id),
                        "category": c,
                    }
                    for c in ("recovered_gun", "arrest")
                ]
            },
        )
        assert r.status_code in (200, 201), r.text
        stats = (await admin.get("/api/v1/stats/outcomes")).json()
    page = await new_page(browser)
    await open_dashboard(page, running)
    await open_tab(page, "stats")
    summary = page.locator("#stats-summary")
    await expect(summary).to_have_attribute("data-cases", str(stats["success_cases"]))
    await expect(summary).to_contain_text(f"Success in {stats['success_cases']} case")
    await expect(page.locator('#outcome-table tr[data-category="recovered_gun"]')).to_have_attribute(
        "data-count", "1"
    )
    await expect(page.locator('#outcome-table tr[data-category="arrest"]')).to_contain_text("Led to arrest")
    await expect(page.locator("#outcome-table tbody tr")).to_have_count(len(stats["per_category"]))
    await page.screenshot(path=str(screenshot_path("statistics.png")))
    assert js_errors(page) == []


# --- an officer on a phone ------------------------------------------------------------------


async def test_officer_on_a_phone(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        alert = await gunshot_alert(running, admin)
    from rtcc.roles import Role

    running.add_user("officer3", Role.officer)
    page = await new_page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    await open_dashboard(page, running, "officer3")
    # officers get the queue, not plate search, the registry or body-cam control
    await expect(page.locator('#side-tabs [data-tab="alerts"]')).to_be_visible()
    for tab in ("plates", "cameras", "units"):
        await expect(page.locator(f'#side-tabs [data-tab="{tab}"]')).to_be_hidden()
    await open_tab(page, "alerts")
    row = page.locator(f'li.alert-row[data-alert-id="{alert["id"]}"]')
    await row.locator('[data-action="acknowledge"]').tap()
    await expect(row).to_have_attribute("data-status", "acknowledged")
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshot_path("alerts-phone.png")), full_page=True)
    await row.locator('[data-action="open"]').tap()
    view = page.locator("#packet-view")
    await expect(view.locator(".packet-sections")).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    box = await view.bounding_box()
    assert box and box["width"] <= PHONE["width"] and box["height"] >= PHONE["height"] - 1  # full screen
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshot_path("packet-phone.png")))
    await page.locator("#packet-close").tap()
    await expect(view).to_be_hidden()
    assert js_errors(page) == []


# --- camera registry and live view ---------------------------------------------------------


async def test_camera_layer_and_live_view(browser: Browser, city: Running) -> None:
    admin = await city.login("admin")
    async with admin:
        cams = (await admin.get("/api/v1/cameras")).json()["items"]
    live = [c for c in cams if c["live"] and c["status"] == "active"]
    assert live, "the simulated city registers cameras with a live source"
    page = await new_page(browser)
    await open_dashboard(page, city)
    # every active camera with a position is on the map with its view cone
    placed = [c for c in cams if c["status"] == "active" and c["lat"] is not None]
    await expect(page.locator(".leaflet-marker-icon[data-camera-id]")).to_have_count(len(placed))
    await expect(page.locator("path.view-cone")).to_have_count(len(placed))
    await open_tab(page, "cameras")
    row = page.locator(f'#camera-list li[data-camera-id="{live[0]["id"]}"]')
    await row.locator('[data-action="live"]').click()
    view = page.locator("#packet-view")
    await expect(view).to_have_attribute("data-kind", "camera")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#packet-view .live-view img');"
        " return i && i.naturalWidth > 0; }",
        timeout=WAIT_MS,
    )
    await page.screenshot(path=str(screenshot_path("camera-live.png")))
    await page.click("#packet-close")
    await expect(page.locator("#packet-view .live-view")).to_have_count(0)
    assert js_errors(page) == []
    # an officer has no registry tab but sees the cameras and their views on the map
    from rtcc.roles import Role

    city.add_user("officer5", Role.officer)
    officer = await new_page(browser)
    await open_dashboard(officer, city, "officer5")
    await expect(officer.locator('#side-tabs [data-tab="cameras"]')).to_be_hidden()
    await expect(officer.locator("path.view-cone")).to_have_count(len(placed))
    assert js_errors(officer) == []


# --- many devices ----------------------------------------------------------------------------


async def test_many_devices_are_drawn_on_a_canvas(browser: Browser, start_center: StartCenter) -> None:
    from rtcc.oversight.device_keys import register_device

    running = await start_center()
    n = 1600  # above the page's DOM_MARKER_LIMIT (1,500)
    lat0, lon0 = ORIGIN

    def _register(s: Any) -> None:
        for i in range(n):
            lat, lon = lat0 + (i // 40) * 0.0004, lon0 + (i % 40) * 0.0005
            register_device(s, f"ac-{i:05d}", DeviceType.acoustic_sensor, f"sensor {i}", lat, lon, None, {})

    assert running.center.store is not None
    await running.center.store.write(_register)
    page = await new_page(browser)
    await open_dashboard(page, running)
    await expect(page.locator("#map")).to_have_attribute("data-device-count", str(n), timeout=WAIT_MS)
    await expect(page.locator("#map")).to_have_attribute("data-dense", "true")
    await expect(page.locator(".leaflet-marker-pane canvas")).to_have_count(1)
    await expect(page.locator("#count-acoustic_sensor")).to_have_attribute("data-total", str(n))
    await page.screenshot(path=str(screenshot_path("dashboard-dense.png")))
    assert js_errors(page) == []
