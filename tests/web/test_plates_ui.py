"""The analyst's plate panel in a real browser against a real center: co-travelling vehicles
(N cameras within T seconds, both tracks on the map), and the read search by match mode,
period, camera and area (radius or polygon picked on the map).

Reads are seeded through the real device ingest. Chromium comes from ``RTCC_TEST_CHROMIUM``;
screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from rtcc.events import PlateRead, Position
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import ORIGIN
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.web.test_dashboard import (
    PHONE,
    js_errors,
    new_page,
    no_horizontal_scroll,
    open_dashboard,
    screenshot_path,
)
from tests.web.test_operations import open_tab, plate_camera

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

X, Y, Z, W = "4ABC123", "7XYZ890", "9ZZZ111", "5WWW222"
LAT, LON = ORIGIN
# four plate cameras ~0.9 km apart: c1 → c2 → c3 northwards, c4 to the east
CAMS = {
    "lpr-c1": (LAT, LON),
    "lpr-c2": (LAT + 0.008, LON),
    "lpr-c3": (LAT + 0.016, LON),
    "lpr-c4": (LAT + 0.008, LON + 0.012),
}
# (plate, camera, seconds after T0): Y follows X past three cameras within seconds; Z passes X at
# one camera only; W passes c2 ten minutes after X (outside any window used here)
PASSES = [
    (X, "lpr-c1", 0), (X, "lpr-c2", 120), (X, "lpr-c3", 240),
    (Y, "lpr-c1", 4), (Y, "lpr-c2", 126), (Y, "lpr-c3", 245),
    (Z, "lpr-c1", 6), (Z, "lpr-c4", 250),
    (W, "lpr-c2", 720),
]  # fmt: skip
WHY = {"purpose": "seeding check", "purpose_category": "criminal_investigation", "case_number": "T-1"}
SERVER_REFUSAL = "every plate search needs a purpose"


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance between two (lat, lon) points (equirectangular; fine below a few km)."""
    k = math.pi / 180
    dx = (b[1] - a[1]) * k * math.cos((a[0] + b[0]) / 2 * k)
    return 6_371_008.8 * math.hypot(dx, (b[0] - a[0]) * k)


async def seed(running: Running, admin: httpx.AsyncClient) -> datetime:
    """Provision the cameras and ingest the passes; T0 (a whole minute, an hour ago)."""
    t0 = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    keys = {dev: await plate_camera(running, dev, *pos) for dev, pos in CAMS.items()}
    for plate, dev, dt in PASSES:
        read = PlateRead(
            source=dev,
            device=dev,
            occurred_at=t0 + timedelta(seconds=dt),
            pos=Position(lat=CAMS[dev][0], lon=CAMS[dev][1]),
            plate=plate,
            region="AL" if plate == X else None,
            confidence=0.91,
        )
        r = await running.http.post(
            "/api/v1/ingest/events",
            headers={"authorization": f"Device {keys[dev]}"},
            json={"events": [read.model_dump(mode="json")]},
        )
        assert r.status_code == 202, r.text

    async def stored() -> bool:
        r = await admin.get("/api/v1/plates/search", params={**WHY, "start": t0.isoformat()})
        return r.status_code == 200 and r.json()["count"] == len(PASSES)

    await eventually(stored, what="the seeded reads in the store")
    return t0


async def analyst_page(browser: Browser, running: Running, **kw: Any) -> Page:
    running.add_user("analyst1", Role.analyst)
    page = await new_page(browser, timezone_id="UTC", **kw)
    await open_dashboard(page, running, "analyst1")
    await open_tab(page, "plates")
    return page


async def give_purpose(page: Page) -> None:
    await page.fill("#ps-purpose", "robbery suspect vehicle")
    await page.fill("#ps-case", "2026-004711")


async def cotravellers(page: Page, plate: str, n: int, t: float) -> None:
    await page.fill("#ct-plate", plate)
    await page.fill("#ct-cameras", str(n))
    await page.fill("#ct-window", str(t))
    await page.click("#ct-submit")


async def test_cotravel_finds_the_vehicle_travelling_with_a_plate(
    browser: Browser, start_center: StartCenter
) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        await seed(running, admin)
        page = await analyst_page(browser, running)
        await page.click("#ps-view-cotravel")
        await expect(page.locator("#cotravel-search")).to_be_visible()

        # without a purpose: the center refuses (and audits the refusal); its message is shown
        await cotravellers(page, X, 3, 10)
        form = page.locator("#cotravel-search")
        await expect(form).to_have_attribute("data-refused", "server")
        await expect(page.locator("#cotravel-msg")).to_contain_text(SERVER_REFUSAL)
        await expect(page.locator("#cotravel-results li")).to_have_count(0)
        r = await admin.get("/api/v1/audit", params={"action": "plate_search_refused"})
        refused = [e for e in r.json()["items"] if e["details"].get("path", "").endswith("/plates/cotravel")]
        assert refused and refused[0]["outcome"] == "refused"

        # with a purpose and a case number: Y passed the same 3 cameras within seconds; Z only one
        await give_purpose(page)
        await cotravellers(page, X, 3, 10)
        rows = page.locator("#cotravel-results li.cotravel-row")
        await expect(rows).to_have_count(1)
        await expect(form).not_to_have_attribute("data-refused", "server")
        row = rows.first
        await expect(row).to_have_attribute("data-plate", Y)
        await expect(row).to_have_attribute("data-cameras", "3")
        await expect(row).to_contain_text("3 cameras")
        await expect(row).to_contain_text("lpr-c1, lpr-c2, lpr-c3")

        # N and T are the analyst's: one shared camera lets Z in, a 5 s window drops Y's 6 s gap at c2 ...
        await cotravellers(page, X, 1, 10)
        await expect(rows).to_have_count(2)
        assert sorted(await rows.evaluate_all("(r) => r.map((x) => x.dataset.plate)")) == sorted([Y, Z])
        await expect(page.locator(f'#cotravel-results li[data-plate="{Z}"]')).to_have_attribute(
            "data-cameras", "1"
        )
        await cotravellers(page, X, 3, 5)
        await expect(page.locator("#cotravel-msg")).to_contain_text("0 vehicles")
        await expect(rows).to_have_count(0)
        # ... and W, ten minutes behind X at c2, only with an hour's window
        await cotravellers(page, X, 1, 3600)
        await expect(rows).to_have_count(3)
        await expect(page.locator(f'#cotravel-results li[data-plate="{W}"]')).to_have_attribute(
            "data-cameras", "1"
        )
        await cotravellers(page, X, 3, 10)
        await expect(rows).to_have_count(1)

        # a click draws both tracks in two colours
        await rows.first.locator('[data-action="tracks"]').click()
        for plate, role in ((X, "target"), (Y, "cotraveller")):
            points = page.locator(
                f'.leaflet-marker-icon[data-track-plate="{plate}"][data-track-role="{role}"]'
            )
            await expect(points).to_have_count(3)
        lines = page.locator("path.track-line")
        await expect(lines).to_have_count(2)
        colours = {
            await page.locator(f"path.track-{role}").get_attribute("stroke")
            for role in ("target", "cotraveller")
        }
        assert len(colours) == 2
        await expect(page.locator("#cotravel-legend")).to_contain_text(f"{X} 3 reads")
        await expect(page.locator("#cotravel-legend")).to_contain_text(f"{Y} 3 reads")
        await expect(row).to_have_class("cotravel-row selected")
        await page.screenshot(path=str(screenshot_path("plates-cotravel.png")))

        # every co-travel search and both track searches are audited with the case number
        r = await admin.get("/api/v1/audit", params={"action": "plate_cotravel"})
        assert any(e["details"].get("case_number") == "2026-004711" for e in r.json()["items"])
        r = await admin.get("/api/v1/audit", params={"action": "plate_track"})
        tracked = {e["details"]["terms"]["plate"] for e in r.json()["items"]}
        assert {X, Y} <= tracked
        assert [e for e in js_errors(page) if "status of 422" not in e] == []  # the refusal above


async def test_cotravellers_of_a_search_result(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        await seed(running, admin)
        page = await analyst_page(browser, running)
        await give_purpose(page)
        await page.fill("#ps-plate", Y)
        await page.click("#ps-submit")
        results = page.locator("#plate-results li.read-row")
        await expect(results).to_have_count(3)
        # the "co-travellers" button of a read opens the co-travel view on that plate (defaults N=2, T=60 s)
        await results.first.locator('[data-action="cotravel"]').click()
        await expect(page.locator("#cotravel-search")).to_be_visible()
        await expect(page.locator("#ct-plate")).to_have_value(Y)
        rows = page.locator("#cotravel-results li.cotravel-row")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-plate", X)
        await expect(rows.first).to_have_attribute("data-cameras", "3")
        assert js_errors(page) == []


async def test_read_search_by_mode_period_camera_and_area(
    browser: Browser, start_center: StartCenter
) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        t0 = await seed(running, admin)
        page = await analyst_page(browser, running)
        await give_purpose(page)
        results = page.locator("#plate-results li.read-row")

        async def search(plate: str = "", mode: str = "exact") -> None:
            await page.fill("#ps-plate", plate)
            await page.select_option("#ps-mode", mode)
            await page.click("#ps-submit")

        async def plates() -> list[str]:
            await expect(page.locator("#plate-msg")).to_contain_text("found")
            return sorted(await results.evaluate_all("(r) => r.map((x) => x.dataset.plate)"))

        # partial (a part of the plate), wildcard, look-alike; the read's region is shown
        await search("ABC1", "partial")
        await expect(results).to_have_count(3)
        assert await plates() == [X] * 3
        await expect(page.locator('#plate-results li[data-region="AL"] .region-tag')).to_have_count(3)
        await expect(results.first.locator(".region-tag")).to_have_text("AL")
        await search("7X?Z*", "wildcard")
        await expect(results).to_have_count(3)
        assert await plates() == [Y] * 3
        await search("4A8C1Z3", "lookalike")  # B read as 8, 2 as Z
        await expect(results).to_have_count(3)
        assert await plates() == [X] * 3
        await search("4A8C1Z3", "exact")
        await expect(results).to_have_count(0)
        # wildcards outside the wildcard mode are refused in the page
        await search("7X?Z*", "exact")
        await expect(page.locator("#plate-search")).to_have_attribute("data-refused", "client")
        await expect(page.locator("#plate-msg")).to_contain_text("Wildcard")

        # cameras alone (no plate)
        await page.fill("#ps-camera", "lpr-c4")
        await search()
        await expect(results).to_have_count(1)
        await expect(results.first).to_have_attribute("data-plate", Z)
        await page.fill("#ps-camera", "lpr-c4, lpr-c2")
        await search()
        await expect(results).to_have_count(4)
        await page.fill("#ps-camera", "")

        # a period (local time of the page = UTC here): [T0+2 min, T0+3 min) holds X's and Y's c2 reads
        fmt = "%Y-%m-%dT%H:%M"
        await page.fill("#ps-start", (t0 + timedelta(minutes=2)).strftime(fmt))
        await page.fill("#ps-end", (t0 + timedelta(minutes=3)).strftime(fmt))
        await search()
        await expect(results).to_have_count(2)
        assert await plates() == [X, Y]
        await page.fill("#ps-start", "")
        await page.fill("#ps-end", "")

        # the map follows X's track (fits c1..c3), then an area is picked on it
        await search(X)
        await results.first.locator('[data-action="track"]').click()
        await expect(page.locator(f'.leaflet-marker-icon[data-track-plate="{X}"]')).to_have_count(3)

        async def marker_centre(device: str) -> tuple[float, float]:
            box = await page.locator(f'.leaflet-marker-icon[data-device-id="{device}"]').bounding_box()
            assert box is not None
            return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

        # radius: one click beside camera c3 sets the centre
        await page.select_option("#ps-area", "radius")
        await page.click("#ps-pick")
        await expect(page.locator("#map")).to_have_attribute("data-picking", "radius")
        x, y = await marker_centre("lpr-c3")
        await page.mouse.click(x + 20, y + 25)
        await expect(page.locator("#map")).not_to_have_attribute("data-picking", "radius")
        centre = (float(await page.input_value("#ps-lat")), float(await page.input_value("#ps-lon")))
        assert metres(centre, CAMS["lpr-c3"]) < 200
        await page.fill("#ps-radius", "350")
        await expect(page.locator("path.search-area")).to_have_count(1)
        await search()
        await expect(results).to_have_count(2)
        assert await plates() == [X, Y]
        for i in range(2):
            await expect(results.nth(i).locator(".row-meta")).to_contain_text("lpr-c3")
        await page.screenshot(path=str(screenshot_path("plates-area-radius.png")))

        # polygon: three corners clicked around camera c1
        await page.select_option("#ps-area", "polygon")
        await page.click("#ps-pick")
        await expect(page.locator("#map")).to_have_attribute("data-picking", "polygon")
        x, y = await marker_centre("lpr-c1")
        for dx, dy in ((-35, 25), (35, 25), (8, -40)):
            await page.mouse.click(x + dx, y + dy)
        await expect(page.locator("#ps-pick-hint")).to_contain_text("3 so far")
        await page.click("#ps-pick")  # done
        await expect(page.locator("#map")).not_to_have_attribute("data-picking", "polygon")
        corners = (await page.input_value("#ps-polygon")).split(";")
        assert len(corners) == 3
        await expect(page.locator("path.search-area")).to_have_count(1)
        await search()
        await expect(results).to_have_count(3)
        assert await plates() == sorted([X, Y, Z])
        await page.screenshot(path=str(screenshot_path("plates-area-polygon.png")))

        # the terms went to the center and into the audit log
        r = await admin.get("/api/v1/audit", params={"action": "plate_search"})
        terms = [
            e["details"]["terms"]
            for e in r.json()["items"]
            if e["details"].get("case_number") == "2026-004711"
        ]
        assert any("polygon" in t and len(t["polygon"]) == 3 for t in terms)
        assert any(t.get("near") and t["near"][2] == 350 for t in terms)
        assert any(t.get("mode") == "lookalike" for t in terms)
        assert any(t.get("cameras") == ["lpr-c4", "lpr-c2"] for t in terms)
        assert js_errors(page) == []


async def test_plate_panel_on_a_phone(browser: Browser, start_center: StartCenter) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        await seed(running, admin)
    page = await analyst_page(browser, running, viewport=PHONE, is_mobile=True, has_touch=True)
    await give_purpose(page)
    await page.click("#ps-view-cotravel")
    await cotravellers(page, X, 3, 10)
    rows = page.locator("#cotravel-results li.cotravel-row")
    await expect(rows).to_have_count(1)
    await rows.first.locator('[data-action="tracks"]').click()
    await expect(page.locator('.leaflet-marker-icon[data-track-role="cotraveller"]')).to_have_count(3)
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshot_path("plates-cotravel-phone.png")), full_page=True)
    await page.click("#ps-view-reads")
    await page.select_option("#ps-area", "radius")
    await expect(page.locator("#ps-pick")).to_be_visible()
    assert await no_horizontal_scroll(page)
    assert js_errors(page) == []
