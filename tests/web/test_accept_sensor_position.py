"""A sensor reporting from the wrong place, on the dashboard (issue 6).

The real pipeline flags a sensor whose pulses report a position 2 km from its registered
one; its heartbeat's GPS fix is kept as the reported position. On the map the sensor is
marked, its popup shows the registered and reported positions and the distance; an analyst
sees no form; the admin sets the registered position to the reported one (with a reason,
refused in the page without one) and the mark clears, on the map and in the center.

Chromium comes from ``RTCC_TEST_CHROMIUM``; screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from rtcc.events import DeviceHeartbeat, Position
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    Array,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.web.test_dashboard import MARKER, js_errors, new_page, open_dashboard, screenshot_path

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

BAD = "ac-t05"  # the centre sensor of the test array
JUMP_M = 2000.0  # how far east its GPS puts it


async def _device(client: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/devices/{sid}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def heartbeat(running: Running, arr: Array, lat: float, lon: float) -> None:
    hb = DeviceHeartbeat(
        source=BAD, device=BAD, device_type="acoustic_sensor", pos=Position(lat=lat, lon=lon)
    )
    r = await running.http.post(
        "/api/v1/ingest/events",
        headers={"authorization": f"Device {arr.keys[BAD]}"},
        json={"events": [hb.model_dump(mode="json")]},
    )
    assert r.status_code == 202, r.text


async def post_far_shot(running: Running, arr: Array) -> tuple[float, float]:
    """Real pulses of one shot, ``BAD``'s reporting a position 2 km east; returns that position."""
    x, y = arr.xy[BAD]
    far_lat, far_lon = arr.proj.to_latlon(x + JUMP_M, y)
    pulses = [
        p.model_copy(update={"pos": Position(lat=far_lat, lon=far_lon, alt_m=p.pos.alt_m)})
        if p.device == BAD
        else p
        for p in shot_pulses(arr, (120.0, -80.0))
    ]
    pulses.sort(key=lambda p: p.device != BAD)
    await post_pulses(running, arr, pulses)
    return far_lat, far_lon


async def flag_sensor(running: Running, admin: httpx.AsyncClient) -> tuple[Array, dict[str, Any]]:
    """Real pulses (one sensor reporting 2 km off) and a heartbeat from there → the flagged device."""
    arr = await provision_array(running)
    use_classifier(pipeline_of(running), 0.95)
    far_lat, far_lon = await post_far_shot(running, arr)
    await heartbeat(running, arr, far_lat, far_lon)

    async def flagged() -> dict[str, Any] | None:
        d = await _device(admin, BAD)
        ok = d["position_mismatch"] and d["attributes"].get("reported_lon") is not None
        return d if ok else None

    dev = await eventually(flagged, what="the sensor flagged, with its reported position")
    assert dev["attributes"]["position_mismatch_m"] == pytest.approx(JUMP_M, abs=20.0)
    return arr, dev


def metres(m: float) -> str:
    """As the page writes a distance (JavaScript's Math.round)."""
    return f"{int(m + 0.5)} m"


async def offset_from_neighbour(page: Page) -> tuple[float, float]:
    """Where the flagged sensor's marker is on screen relative to another sensor's (pixels; one frame)."""
    dx, dy = await page.evaluate(
        """([a, b]) => {
            const box = (id) => document.querySelector(`.leaflet-marker-icon[data-device-id="${id}"]`)
                .getBoundingClientRect();
            const p = box(a), q = box(b);
            return [p.x - q.x, p.y - q.y];
        }""",
        [BAD, "ac-t01"],
    )
    return float(dx), float(dy)


async def open_sensor(page: Page) -> None:
    await page.locator(f'{MARKER}[data-device-id="{BAD}"]').dispatch_event("click")
    await expect(page.locator(f'.popup-device[data-device-id="{BAD}"]')).to_be_visible()
    await page.wait_for_function("getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")


async def test_mismatched_sensor_is_marked_and_the_admin_fixes_it(
    browser: Browser, start_center: StartCenter
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    admin = await running.login("admin")
    async with admin:
        arr, dev = await flag_sensor(running, admin)
        distance = metres(dev["attributes"]["position_mismatch_m"])
        a = dev["attributes"]

        # an analyst sees the mark, the positions and the distance, and no form
        page = await new_page(browser)
        await open_dashboard(page, running, "analyst1")
        bad = page.locator(f'{MARKER}[data-device-id="{BAD}"]')
        await expect(bad).to_have_attribute("data-position-mismatch", "true")
        await expect(bad).to_have_class(re.compile(r"\bdev-mismatch\b"))
        await expect(page.locator(f'{MARKER}[data-device-id="ac-t01"]')).not_to_have_attribute(
            "data-position-mismatch", "true"
        )
        await open_sensor(page)
        section = page.locator(".popup-position")
        await expect(section).to_have_attribute("data-position-mismatch", "true")
        await expect(section.locator('[data-row="distance"]')).to_contain_text(distance)
        await expect(section.locator('[data-row="registered"]')).to_contain_text(f"{dev['lat']:.5f}")
        await expect(section.locator('[data-row="reported"]')).to_contain_text(f"{a['reported_lon']:.5f}")
        await expect(section.locator(".msg")).to_contain_text("Position mismatch")
        await expect(section.locator("form")).to_have_count(0)
        assert js_errors(page) == []
        await page.context.close()

        # the admin: same view, with the form; no reason → refused in the page
        page = await new_page(browser)
        await open_dashboard(page, running)
        await open_sensor(page)
        section = page.locator(".popup-position")
        await expect(section.locator('[data-row="distance"]')).to_contain_text(distance)
        # a live heartbeat from elsewhere: the reported position follows, the marker stays registered
        before = await offset_from_neighbour(page)
        x, y = arr.xy[BAD]
        new_lat, new_lon = arr.proj.to_latlon(x + JUMP_M + 50.0, y)
        await heartbeat(running, arr, new_lat, new_lon)
        await expect(section.locator('[data-row="reported"]')).to_contain_text(f"{new_lon:.5f}")
        assert await offset_from_neighbour(page) == pytest.approx(before, abs=3)  # 50 m ≈ 12 px
        form = section.locator("form.position-form")
        await form.locator('[data-action="use-reported"]').click()
        await expect(form.locator(".msg")).to_contain_text("A reason is required")
        await form.locator('input[name="lat"]').fill("95")
        await form.locator('input[name="reason"]').fill("re-surveyed on site")
        await form.locator('[data-action="set-position"]').click()
        await expect(form.locator(".msg")).to_contain_text("Latitude must be between")
        still = await _device(admin, BAD)
        assert still["position_mismatch"] is True and still["lat"] == dev["lat"]
        await page.screenshot(path=str(screenshot_path("sensor-position-mismatch.png")))

        # the reported position becomes the registered one: the mark clears
        await form.locator('[data-action="use-reported"]').click()
        await expect(page.locator(".popup-position")).to_have_attribute("data-position-mismatch", "false")
        await expect(page.locator(f'{MARKER}[data-device-id="{BAD}"]')).not_to_have_attribute(
            "data-position-mismatch", "true"
        )
        registered = page.locator('.popup-position [data-row="registered"]')
        await expect(registered).to_contain_text(f"{new_lon:.5f}")
        fixed = await _device(admin, BAD)
        assert fixed["position_mismatch"] is False
        assert (fixed["lat"], fixed["lon"]) == pytest.approx((new_lat, new_lon))
        audit = await admin.get("/api/v1/audit", params={"action": "set_device_position"})
        assert audit.status_code == 200, audit.text
        [entry] = audit.json()["items"]  # one change: the page refused the two bad tries itself
        assert entry["details"]["reason"] == "re-surveyed on site"
        assert js_errors(page) == []
        await page.context.close()


async def test_the_flag_arrives_live_and_clears_live(browser: Browser, start_center: StartCenter) -> None:
    """A dashboard open before the sensor misbehaves marks it as the pulses arrive, with no reload,
    and unmarks and moves it when the admin re-registers it elsewhere (another session)."""
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    admin = await running.login("admin")
    async with admin:
        arr = await provision_array(running)
        use_classifier(pipeline_of(running), 0.95)
        page = await new_page(browser)
        await open_dashboard(page, running, "analyst1")
        bad = page.locator(f'{MARKER}[data-device-id="{BAD}"]')
        await expect(bad).to_be_attached()
        await expect(bad).not_to_have_attribute("data-position-mismatch", "true")
        reloads: list[str] = []
        page.on("request", lambda r: reloads.append(r.url) if r.url.endswith("/api/v1/devices") else None)

        await post_far_shot(running, arr)

        # the mark and a feed line arrive over the WebSocket
        await expect(bad).to_have_attribute("data-position-mismatch", "true")
        row = page.locator('#feed li[data-event-type="device_position"][data-origin="live"]')
        await expect(row.first).to_contain_text(f"{BAD} reports a position")
        flagged = await _device(admin, BAD)
        await open_sensor(page)
        section = page.locator(".popup-position")
        await expect(section).to_have_attribute("data-position-mismatch", "true")
        await expect(section.locator('[data-row="distance"]')).to_contain_text(
            metres(flagged["attributes"]["position_mismatch_m"])
        )

        # the admin re-registers it 300 m north (through the API, as another session would)
        before = await offset_from_neighbour(page)
        x, y = arr.xy[BAD]
        new_lat, new_lon = arr.proj.to_latlon(x, y + 300.0)
        r = await admin.put(
            f"/api/v1/devices/{BAD}/position",
            json={"lat": new_lat, "lon": new_lon, "reason": "re-surveyed on site"},
        )
        assert r.status_code == 200, r.text
        await expect(page.locator(".popup-position")).to_have_attribute("data-position-mismatch", "false")
        await expect(bad).not_to_have_attribute("data-position-mismatch", "true")
        registered = page.locator('.popup-position [data-row="registered"]')
        await expect(registered).to_contain_text(f"{new_lat:.5f}")
        after = await offset_from_neighbour(page)
        assert after[1] < before[1] - 10  # moved up the screen (north), live
        assert reloads == []  # applied from the events, not by re-reading the device list
        assert js_errors(page) == []
        await page.context.close()
